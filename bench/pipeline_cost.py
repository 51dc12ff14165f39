"""The cost of the pipeline around training, as a user meets it: `mlpipe run` in a project with
the embedded stores (SQLite MLflow, a local DVC repository), against the plain PyTorch script a
person would write instead (bench/plain_script.py), paired in one session (issue 36.2).

1. A 1-epoch `mlpipe run --models cnn` on digits with an existing store, a new seed each time (so
   it trains and registers a version): with the project's Prefect server warm, and with a
   temporary API per run (MLPIPE_PREFECT_SERVER=temporary, the way every run went before issue 36);
   its wall time, the fixed cost (minus `Trainer.fit`) by stage from the run's own log, and the
   ratio to the plain script's wall time.
2. The same command again, nothing changed: nothing may train.
3. Peak memory of `mlpipe run --dataset digits` with all three families (the process tree).

    python pipeline_cost.py                    # both ways
    python pipeline_cost.py project            # one
    BEFORE=<commit> PYTHONPATH=<its clone> python pipeline_cost.py temporary   # older code, its own section
"""

import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

from common import ROOT, sample_peak_memory, save

MLPIPE = str(Path(sys.executable).with_name("mlpipe"))
PLAIN = ROOT / "bench" / "plain_script.py"
REPEATS = 5
MODES = {"project": "the project's Prefect server, warm", "temporary": "a temporary Prefect API per run"}
FIRST_TARGET, RATIO_TARGET, RERUN_TARGET = 8.0, 1.5, 4.0  # seconds, x the plain script, seconds (project server)
MEMORY_TARGET_GB = 1.5
# Log lines that end a stage: "HH:MM:SS.mmm | INFO | Task run 'validate_dataset-1a2' - Finished in state ..."
MARK = re.compile(r"^(\d\d:\d\d:\d\d\.\d+) \| \w+ +\| (?:Task run '(\w+)-\w+' - Finished|Flow run '[\w-]+' - (\w+))")
STAGES = {
    "load_dataset": "load and version the data (DVC)",
    "validate_dataset": "validation (Great Expectations, row checks, Data Docs)",
    "split_dataset": "split",
    "train_model": "training task around Trainer.fit",
    "train_baseline": "the classical baseline fitted",
    "choose_candidate": "the choice on validation rows (with the ensemble)",
    "evaluate_model": "evaluation (metrics, plots)",
    "log_candidates": "MLflow runs of the candidates",
    "register_chosen": "the chosen one logged as a pyfunc and registered",
    "promotion_gate": "the champion re-scored and the serving check, in fresh processes",
    "publish_reports": "Prefect artifacts: decision, leaderboard, links",
}


def fresh_project() -> Path:
    root = Path(tempfile.mkdtemp(prefix="mlpipe-bench-")) / "project"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run([str(Path(sys.executable).with_name("dvc")), "init", "-q"], cwd=root, check=True)
    return root


def environment(root: Path, mode: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI")}
    return env | {"MLPIPE_ROOT": str(root), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "MLPIPE_PREFECT_SERVER": mode}


def plain_seconds(folder: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, str(PLAIN), str(folder / "plain.pt")], check=True, capture_output=True)
    return time.perf_counter() - started


def mlpipe_run(root: Path, mode: str, *args: str, sample_memory: bool = False) -> dict:
    """Run `mlpipe run`; return wall time, stage times from its log and, if asked, peak memory."""
    started_at, started = datetime.now(), time.perf_counter()
    process = subprocess.Popen(
        [MLPIPE, "run", "--dataset", "digits", *args],
        env=environment(root, mode),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak = [0]
    if sample_memory:
        threading.Thread(target=sample_peak_memory, args=(process, peak), daemon=True).start()
    out, err = process.communicate(timeout=3600)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"mlpipe run failed:\n{err[-3000:]}")
    return {"wall": wall, "stages": _stages(err, started_at, wall), "peak_bytes": peak[0], "log": err + out}


def _stages(log: str, started_at: datetime, wall: float) -> dict[str, float]:
    """Seconds per stage: from one log mark to the next, the process start being the first."""
    marks = [("start", 0.0)]
    for line in log.splitlines():
        found = MARK.match(line)
        if not found:
            continue
        clock = datetime.combine(started_at.date(), datetime.strptime(found[1], "%H:%M:%S.%f").time())
        name = found[2] or {"Beginning": "flow run begins", "Finished": "flow run ends"}.get(found[3])
        if name:
            marks.append((name, (clock - started_at).total_seconds()))
    marks.append(("exit", wall))
    stages: dict[str, float] = {}
    for (_, before), (name, after) in zip(marks, marks[1:], strict=False):
        label = {
            "flow run begins": "start-up: imports, the Prefect API found or started",
            "flow run ends": "flow bookkeeping",
            "exit": "leaderboard, exit",
        }.get(name, STAGES.get(name, name))
        stages[label] = stages.get(label, 0.0) + (after - before)
    return stages


def fit_seconds(root: Path) -> float:
    """`Trainer.fit`'s seconds in the latest run's cnn candidate."""
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{root / 'mlflow' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("digits")
    filter_string = "tags.`mlpipe.role` = 'candidate' and tags.family = 'cnn'"
    (run,) = client.search_runs([experiment.experiment_id], filter_string, order_by=["start_time DESC"], max_results=1)
    return run.data.metrics["train/seconds"]


def median(values: list[float]) -> float:
    return statistics.median(values)


def row(figure: str, value: str, target: str = "", met: bool | None = None) -> dict:
    return {"figure": figure, "value": value, "target": target, "met": met}


def main(modes: list[str]) -> None:
    roots = {mode: fresh_project() for mode in modes}
    for mode, root in roots.items():  # an existing store (and, for the project's, a warm server)
        mlpipe_run(root, mode, "--models", "cnn", "--max-epochs", "1")
    plain, first, again = [], {m: [] for m in modes}, {m: [] for m in modes}
    for i in range(REPEATS):  # paired: drift in the machine's speed hits every path alike
        plain.append(plain_seconds(roots[modes[0]]))
        for mode, root in roots.items():
            args = ("--models", "cnn", "--max-epochs", "1", "--seed", str(100 + i))
            run = mlpipe_run(root, mode, *args)
            run["fit"], run["ratio"] = fit_seconds(root), run["wall"] / plain[-1]
            first[mode].append(run)
            rerun = mlpipe_run(root, mode, *args)
            assert "unchanged: data, parameters and code are those of" in rerun["log"], rerun["log"][-2000:]
            again[mode].append(rerun)
            print(f"{mode}: plain {plain[-1]:.1f} s, run {run['wall']:.1f} s, rerun {rerun['wall']:.1f} s", flush=True)

    rows = [row("the plain PyTorch script (bench/plain_script.py): wall time", f"{median(plain):.1f} s")]
    for mode in modes:
        runs, project = first[mode], mode == "project"
        wall, ratio, rerun = (
            median([r["wall"] for r in runs]),
            median([r["ratio"] for r in runs]),
            median([r["wall"] for r in again[mode]]),
        )
        rows += [
            row(
                f"{MODES[mode]}: 1-epoch `mlpipe run --models cnn`, wall time",
                f"{wall:.1f} s",
                f"<= {FIRST_TARGET:.0f} s" if project else "",
                wall <= FIRST_TARGET if project else None,
            ),
            row(
                f"{MODES[mode]}: the same against the plain script (paired)",
                f"{ratio:.2f}x",
                f"<= {RATIO_TARGET}x" if project else "",
                ratio <= RATIO_TARGET if project else None,
            ),
            row(f"{MODES[mode]}: of which `Trainer.fit`", f"{median([r['fit'] for r in runs]):.1f} s"),
            row(
                f"{MODES[mode]}: rerun with nothing changed, wall time",
                f"{rerun:.1f} s",
                f"<= {RERUN_TARGET:.0f} s" if project else "",
                rerun <= RERUN_TARGET if project else None,
            ),
        ]
        for stage in runs[0]["stages"]:
            fit = STAGES["train_model"]
            seconds = median([r["stages"].get(stage, 0.0) - (r["fit"] if stage == fit else 0) for r in runs])
            rows.append(row(f"  {mode}: stage: {stage}", f"{seconds:.2f} s"))

    roots["memory"] = fresh_project()
    memory = mlpipe_run(roots["memory"], modes[0], "--max-epochs", "5", sample_memory=True)
    gigabytes = memory["peak_bytes"] / 2**30
    rows.append(
        row(
            f"peak memory of `mlpipe run` on digits, all three families ({MODES[modes[0]]})",
            f"{gigabytes:.2f} GB",
            f"<= {MEMORY_TARGET_GB} GB",
            gigabytes <= MEMORY_TARGET_GB,
        )
    )
    for root in roots.values():  # no project server outlives the benchmark
        subprocess.run([MLPIPE, "down"], env=environment(root, "project"), capture_output=True)  # none before 36
    before = os.environ.get("BEFORE")  # the code of an earlier commit, on PYTHONPATH
    save(
        f"pipeline_cost_{before[:7]}" if before else "pipeline_cost",
        f"Pipeline cost around training, the code of {before[:7]}"
        if before
        else "Pipeline cost around training (issue 36.2)",
        rows,
        f"Projects with the embedded stores, the store made by a first run; medians of {REPEATS} paired rounds "
        "(the plain script, then each way's run and rerun); stage times from the run's log, each with the "
        "imports it makes. Peak memory: the proportional set size (PSS) of the whole process tree sampled "
        "every 0.2 s, with --max-epochs 5 in a fresh project.",
    )


if __name__ == "__main__":
    main(sys.argv[1:] or list(MODES))
