"""A 1,000,000-row CSV through `mlpipe data add` and `mlpipe validate` (issue 15): wall time and
peak memory of each command's process tree, against the size of the table itself.

The table: 24 float columns of series values and an integer label (about 190 MB as float64 in
memory, 230 MB as CSV text)."""

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


if __name__ == "__main__":
    main()
