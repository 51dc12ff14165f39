"""Large files, wall time and peak memory of each command's process tree.

`python bench/large_file.py add` (and `make bench`): a 1,000,000-row CSV through `mlpipe data add` and `mlpipe validate`
(issue 15), against the size of the table itself. The table: 24 float columns of series values
and an integer label (about 190 MB as float64 in memory, 230 MB as CSV text).

`python bench/large_file.py predict` (and `make bench`): a 2,000,000-row CSV of digits images (64 pixel columns, about
1 GB as float64) labelled by `mlpipe predict` through @champion and @compact, and by the `predict`
deployment's flow (batch_inference, with its monitoring from the same pass) through @champion
(issue 35: under 1.5 GB each)."""

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

from common import sample_peak_memory, save

MLPIPE = str(Path(sys.executable).with_name("mlpipe"))
ROWS, COLUMNS = 1_000_000, 24


def write_csv(path: Path, rows: int = ROWS) -> int:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, rows)
    values = rng.normal(size=(rows, COLUMNS)) + labels[:, None] * 0.1
    frame = pd.DataFrame(values.round(4), columns=[f"t{i}" for i in range(COLUMNS)])
    frame.insert(0, "label", labels)
    frame.to_csv(path, index=False)
    return int(frame.memory_usage(index=False).sum())


def measured(args: list[str], root: Path, env: dict) -> tuple[float, int, str]:
    started = time.perf_counter()
    process = subprocess.Popen(
        [MLPIPE, *args], cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    peak = [0]
    threading.Thread(target=sample_peak_memory, args=(process, peak), daemon=True).start()
    out, err = process.communicate(timeout=3600)
    if process.returncode != 0:
        raise SystemExit(f"mlpipe {' '.join(args)} failed:\n{err[-3000:]}")
    return time.perf_counter() - started, peak[0], out


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="mlpipe-bench-large-"))
    root = work / "project"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run([str(Path(sys.executable).with_name("dvc")), "init", "-q"], cwd=root, check=True)
    csv = work / "series.csv"
    table_bytes = write_csv(csv)
    env = {**os.environ, "MLPIPE_ROOT": str(root), "MLPIPE_DVC_REMOTE": str(work / "remote")}

    small = work / "small.csv"
    write_csv(small, 1000)  # the same commands on 1,000 rows: what the libraries alone take
    _, add_base, _ = measured(["data", "add", str(small), "--name", "small", "--modality", "sequence"], root, env)
    _, validate_base, _ = measured(["validate", "--dataset", "small"], root, env)
    add_seconds, add_peak, _ = measured(["data", "add", str(csv), "--name", "big", "--modality", "sequence"], root, env)
    validate_seconds, validate_peak, _ = measured(["validate", "--dataset", "big"], root, env)
    gb = 2**30
    rows = [
        {
            "figure": "the table in memory (float64 values, int64 labels)",
            "value": f"{table_bytes / gb:.2f} GiB",
            "target": "",
            "met": None,
        },
        {"figure": "CSV on disk", "value": f"{csv.stat().st_size / gb:.2f} GiB", "target": "", "met": None},
        {
            "figure": "`mlpipe data add` of the CSV: wall time",
            "value": f"{add_seconds:.1f} s",
            "target": "",
            "met": None,
        },
        {
            "figure": "`mlpipe data add`: peak memory (process tree PSS)",
            "value": f"{add_peak / gb:.2f} GiB",
            "target": "",
            "met": None,
        },
        {"figure": "`mlpipe validate`: wall time", "value": f"{validate_seconds:.1f} s", "target": "", "met": None},
        {
            "figure": "`mlpipe validate`: peak memory (process tree PSS)",
            "value": f"{validate_peak / gb:.2f} GiB",
            "target": "",
            "met": None,
        },
    ]
    held = max(add_peak - add_base, validate_peak - validate_base) / table_bytes
    rows.append(
        {
            "figure": "copies of the table held at once, data add / validate (peak above the 1,000-row run's)",
            "value": f"{(add_peak - add_base) / table_bytes:.1f} / {(validate_peak - validate_base) / table_bytes:.1f}",
            "target": "< 3",
            "met": held < 3,
        }
    )
    for row in rows:
        print(f"{row['figure']}: {row['value']}")
    save(
        "large_file",
        "A 1,000,000-row CSV through data add and validate (issue 15)",
        rows,
        "One run each, fresh project; memory sampled every 0.2 s.",
    )


PREDICT_ROWS = 2_000_000
PREDICT_TARGET_GB = 1.5
FLOW = """
import sys
from flows.inference import batch_inference
summary = batch_inference("digits", sys.argv[1], "outputs/big-monitored.csv")
print(summary["rows"], summary["monitoring"]["summary"])
"""


def predict_main() -> None:
    from pipeline_cost import environment, fresh_project
    from sklearn.datasets import load_digits

    root = fresh_project()
    env = environment(root)
    measured(["run", "--models", "cnn", "--max-epochs", "10"], root, env)
    measured(["compress", "--family", "cnn", "--max-epochs", "10"], root, env)

    images = load_digits().data  # the built-in data set's rows (its pixel columns, 0 to 16)
    rng = np.random.default_rng(0)
    big = root / "incoming" / "big.csv"  # under the project: the deployment's input rule
    big.parent.mkdir()
    frame = pd.DataFrame(images[rng.integers(0, len(images), PREDICT_ROWS)].astype(np.int64))
    frame.columns = [f"pixel_{i}" for i in range(images.shape[1])]
    frame.to_csv(big, index=False)
    table_bytes = PREDICT_ROWS * images.shape[1] * 8
    del frame

    gb = 2**30
    rows = [
        {"figure": "rows", "value": f"{PREDICT_ROWS:,}", "target": "", "met": None},
        {"figure": "the table as float64", "value": f"{table_bytes / gb:.2f} GiB", "target": "", "met": None},
        {"figure": "CSV on disk", "value": f"{big.stat().st_size / gb:.2f} GiB", "target": "", "met": None},
    ]
    runs = {
        "`mlpipe predict` through @champion": ["predict", "--input", str(big), "--output", "outputs/big.csv"],
        "`mlpipe predict` through @compact": [
            *("predict", "--input", str(big), "--output", "outputs/big-compact.csv", "--alias", "compact")
        ],
    }
    for what, args in runs.items():
        seconds, peak, out = measured(args, root, env)
        print(f"{what}: {seconds:.1f} s, {peak / gb:.2f} GiB; {out.strip()}")
        rows.append({"figure": f"{what}: wall time", "value": f"{seconds:.1f} s", "target": "", "met": None})
        rows.append(_peak_row(f"{what}: peak memory (process tree PSS)", peak))
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", FLOW, "incoming/big.csv"], cwd=root, env=env, stdout=subprocess.PIPE, text=True
    )
    peak = [0]
    threading.Thread(target=sample_peak_memory, args=(process, peak), daemon=True).start()
    out, _ = process.communicate(timeout=3600)
    if process.returncode != 0:
        raise SystemExit("the predict flow failed")
    what, seconds = "the `predict` flow with monitoring, @champion", time.perf_counter() - started
    print(f"{what}: {seconds:.1f} s, {peak[0] / gb:.2f} GiB; {out.strip()}")
    rows.append({"figure": f"{what}: wall time", "value": f"{seconds:.1f} s", "target": "", "met": None})
    rows.append(_peak_row(f"{what}: peak memory (its process and Prefect's temporary server)", peak[0]))
    save(
        "large_file_predict",
        "A 2,000,000-row CSV labelled by predict (issue 35)",
        rows,
        "One run each, fresh project, a 10-epoch cnn champion and its compact variant; memory sampled every 0.2 s.",
    )


def _peak_row(figure: str, peak: int) -> dict:
    gb = 2**30
    return {
        "figure": figure,
        "value": f"{peak / gb:.2f} GiB",
        "target": f"< {PREDICT_TARGET_GB} GB",
        "met": peak < PREDICT_TARGET_GB * 1e9,
    }


if __name__ == "__main__":
    if sys.argv[1:] != ["predict"]:
        main()
    if sys.argv[1:] != ["add"]:
        predict_main()
