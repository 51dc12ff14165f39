"""What `mlpipe run --parallel` buys (issue 19): three network candidates on digits (cnn, rnn,
transformer, with the classical baseline), trained one after the other in the run's process
against all at once on a temporary 2-worker local Dask cluster, each in a fresh project (nothing
cached). The training stage is timed from the run's own log: from the split's end to the last
candidate's end, so the cluster's start is counted against it.

    python bench/parallel.py [MAX_EPOCHS]     (default 10: the transformer's 80 would take long)

Results: bench/results/parallel.json.
"""

import re
import sys
from datetime import datetime

from pipeline_cost import MARK, fresh_project, mlpipe_run

from common import save

MODELS = "cnn,rnn,transformer"
TRAINED = ("train_model", "train_baseline")


def training_seconds(log: str) -> float:
    """From the end of split_dataset to the end of the last candidate's task, in the run's log."""
    marks = {}
    for line in log.splitlines():
        found = MARK.match(line)
        if found and found[2]:
            clock = datetime.strptime(found[1], "%H:%M:%S.%f")
            marks.setdefault(found[2], []).append(clock)
    ends = [clock for name in TRAINED for clock in marks.get(name, [])]
    return round((max(ends) - marks["split_dataset"][0]).total_seconds(), 1)


def test_accuracies(log: str) -> dict:
    return dict(re.findall(r"(\w+): test accuracy (\d\.\d+)", log))


def main() -> None:
    epochs = sys.argv[1] if len(sys.argv) > 1 else "10"
    runs = {}
    for mode, extra in (("sequential", []), ("parallel", ["--parallel"])):
        done = mlpipe_run(fresh_project(), "--models", MODELS, "--max-epochs", epochs, *extra)
        runs[mode] = {
            "wall": round(done["wall"], 1),
            "training": training_seconds(done["log"]),
            "test": test_accuracies(done["log"]),
        }
        print(mode, runs[mode], flush=True)
    sequential, parallel = runs["sequential"], runs["parallel"]
    same = sequential["test"] == parallel["test"]
    rows = [
        {
            "figure": f"training stage, 3 networks + baseline, {epochs} epochs at most: sequential -> 2 Dask workers",
            "value": f"{sequential['training']} s -> {parallel['training']} s "
            f"({sequential['training'] / parallel['training']:.2f}x)",
            "target": "",
            "met": None,
        },
        {
            "figure": "whole run (mlpipe run), sequential -> parallel",
            "value": f"{sequential['wall']} s -> {parallel['wall']} s",
            "target": "",
            "met": None,
        },
        {
            "figure": "test accuracies identical (same seeds)",
            "value": ", ".join(f"{k} {v}" for k, v in parallel["test"].items()),
            "target": "identical",
            "met": same,
        },
    ]
    notes = (
        "Each Dask worker is a process with one torch thread (Dask sets OMP_NUM_THREADS=1); the "
        "sequential run's torch uses both cores. On 2 cores the gain is what one thread per candidate "
        "wins over two threads per candidate, less the cluster's start."
    )
    save("parallel", "Parallel candidates on Dask (issue 19)", rows, notes, extra={"runs": runs})


if __name__ == "__main__":
    main()
