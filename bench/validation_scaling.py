"""Validation time at 10k, 100k and 1M rows, and the fixed cost of setting up Great Expectations.

The table has the digits layout (64 pixel columns 0..16 and a label) with random values, checked
against expectations/digits.json (132 expectations) plus mlpipe's row checks, as the pipeline does.
"""

import subprocess
import sys
import time

import numpy as np
import pandas as pd

from common import ROOT, median_seconds, save

SIZES = (10_000, 100_000, 1_000_000)
TARGET_1M = 15.0


def table(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.integers(0, 17, size=(rows, 64)), columns=[f"pixel_{i}" for i in range(64)])
    frame["label"] = rng.integers(0, 10, size=rows)
    return frame


def fixed_cost() -> float:
    """A fresh process: import GX, make a context, validate one expectation on one row."""
    script = """
import time; started = time.perf_counter()
import pandas as pd, great_expectations as gx
from great_expectations import expectations as gxe
context = gx.get_context(mode="ephemeral")
batch = (context.data_sources.add_pandas("p").add_dataframe_asset("a").add_batch_definition_whole_dataframe("b")
         .get_batch(batch_parameters={"dataframe": pd.DataFrame({"x": [1]})}))
batch.validate(gx.ExpectationSuite(name="s", expectations=[gxe.ExpectColumnValuesToNotBeNull(column="x")]))
print(time.perf_counter() - started)
"""
    times = []
    for _ in range(3):
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
        times.append(float(done.stdout.strip().splitlines()[-1]))
    return sorted(times)[1]


def main() -> None:
    from tasks.types import Dataset
    from tasks.validation.expectations import load_suite, run_suite
    from tasks.validation.row_checks import run_checks

    suite = load_suite(ROOT / "expectations" / "digits.json")
    run_suite(table(100), suite, "digits")  # warm: imports and GX's first context are the fixed cost
    rows = [
        {
            "figure": "GX fixed cost (import, context, first validation; fresh process)",
            "value": f"{fixed_cost():.2f} s",
            "target": "",
            "met": None,
        }
    ]
    seconds = {}
    for size in SIZES:
        frame = table(size)
        dataset = Dataset("digits", "image", frame, "label", [f"pixel_{i}" for i in range(64)], ROOT, "bench")

        def validate(frame=frame, dataset=dataset):
            run_suite(frame, suite, "digits")
            run_checks(dataset)

        started = time.perf_counter()
        seconds[size] = median_seconds(validate, repeats=3)
        print(f"{size:>9,} rows: {seconds[size]:.2f} s (bench {time.perf_counter() - started:.0f} s)", flush=True)
        target = f"<= {TARGET_1M:.0f} s" if size == 1_000_000 else ""
        met = seconds[size] <= TARGET_1M if size == 1_000_000 else None
        rows.append(
            {
                "figure": f"validation of {size:,} rows x 65 columns (suite + row checks)",
                "value": f"{seconds[size]:.2f} s",
                "target": target,
                "met": met,
            }
        )
    growth = seconds[1_000_000] / seconds[100_000]
    rows.append(
        {
            "figure": "growth from 100k to 1M rows (10x the rows)",
            "value": f"{growth:.1f}x",
            "target": "<= 10x (linear)",
            "met": growth <= 10,
        }
    )
    save(
        "validation",
        "Validation scaling (issue 4)",
        rows,
        "132 expectations from expectations/digits.json plus duplicates, class counts, numeric, "
        "finite and pixel-range checks; median of 3 runs.",
    )


if __name__ == "__main__":
    main()
