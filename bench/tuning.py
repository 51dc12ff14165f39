"""What `mlpipe tune` buys on shared data sets, and what it costs (issue 18's figures).

    python bench/tuning.py ecg200:cnn,osuleaf:cnn,trec:cnn,sst2:cnn [TRIALS] [SPEEDUP_SET]

For each `data:family`: the family trained with params.yaml's defaults, then a study of TRIALS
trials (default 20, one worker), then the family trained with what the study's verdict keeps (its
best settings if they beat the defaults on the check half of the validation rows, else the
defaults), as the next pipeline run would train it. Validation accuracy (all the validation rows)
is what tuning judged by; test accuracy is reported beside it to show whether tuning overfitted
the validation rows, never used to choose.
Also: how many trials were pruned and the training time pruning saved (the epochs a pruned
trial did not run, at the study's mean seconds per epoch), and for SPEEDUP_SET (default ecg200:cnn)
the wall time of 8 trials with 2 workers against 1 (fresh studies, pruning off, same seeds).
Results: bench/results/tuning.json.
"""

import json
import sys
import tempfile
import time
from pathlib import Path

from variants import shared_split

from common import RESULTS, save


def _accuracies(dataset, parts, config, folder: Path) -> dict:
    import numpy as np

    from tasks.training.network import train

    started = time.perf_counter()
    model = train(dataset, parts, config, folder)

    def accuracy(rows) -> float:
        predicted = model.predict_proba(dataset.frame.iloc[rows]).argmax(axis=1)
        return round(float(np.mean(predicted == dataset.class_indices(rows))), 4)

    seconds = round(time.perf_counter() - started, 1)
    return {"val": accuracy(parts.val), "test": accuracy(parts.test), "seconds": seconds}


def _study(dataset, parts, project, family: str, trials: int, workers: int, root: Path, tag: str) -> tuple[dict, float]:
    """A fresh study on a scratch project: (its summary, wall seconds)."""
    from tasks.infra.settings import Settings
    from tasks.tuning.report import summarize
    from tasks.tuning.study import TuneJob, open_study
    from tasks.tuning.study_workers import run_workers
    from tasks.tuning.tracking import start_tuning_run

    settings = Settings(root=root)
    experiment_id, parent_id = start_tuning_run(settings, dataset.name, f"bench-{tag}", {})
    job = TuneJob(dataset, parts, project, family, project.seed, trials, None, root, experiment_id, parent_id)
    started = time.perf_counter()
    open_study(job)  # created once, its defaults' trial enqueued, before the workers start
    run_workers(job, workers, root / "outputs" / tag)
    return summarize(open_study(job, enqueue=False), job), round(time.perf_counter() - started, 1)


def _pruning_saved(summary: dict) -> float:
    """Seconds of training the pruned trials did not spend: their missing epochs (against the mean
    of the finished trials) at the study's mean seconds per epoch."""
    finished, pruned = summary["epochs"]["COMPLETE"], summary["epochs"]["PRUNED"]
    if not finished or not pruned:
        return 0.0
    seconds = summary["seconds"]["COMPLETE"] + summary["seconds"]["PRUNED"]
    per_epoch = seconds / max(1, sum(finished) + sum(pruned))
    missing = sum(max(0.0, sum(finished) / len(finished) - n) for n in pruned)
    return round(missing * per_epoch, 1)


def tune_one(name: str, family: str, trials: int) -> dict:
    from tasks.training.config import train_config

    dataset, parts, project = shared_split(name)
    root = Path(tempfile.mkdtemp(prefix="mlpipe-bench-tuning-"))
    default_config = train_config(project, dataset.modality, family, project.seed)
    defaults = _accuracies(dataset, parts, default_config, root / "default")
    summary, wall = _study(dataset, parts, project, family, trials, 1, root, f"{name}-{family}")
    if summary["kept"] == "tuned":
        tuned_config = train_config(project, dataset.modality, family, project.seed, tuned=summary["settings"])
        tuned = _accuracies(dataset, parts, tuned_config, root / "tuned")
    else:  # the next run trains the defaults: the same model
        tuned = dict(defaults)
    return {
        "data": name,
        "family": family,
        "trials": trials,
        "default": defaults,
        "tuned": tuned,
        "best_trial_val": round(summary["value"], 4) if summary["value"] is not None else None,
        "settings": summary["settings"],
        "kept": summary["kept"],
        "why": summary["why"],
        "check": summary["check"],
        "rows": summary["rows"],
        "counts": summary["counts"],
        "tuning_seconds": wall,
        "pruning_saved_seconds": _pruning_saved(summary),
        "test_gain": round(tuned["test"] - defaults["test"], 4),
    }


def speedup(name: str, family: str, trials: int = 8) -> dict:
    dataset, parts, project = shared_split(name)
    raw = project.model_dump(exclude_none=True)
    raw["tuning"]["startup_trials"] = trials  # no pruning: both runs train every trial in full
    from tasks.infra.params import ProjectParams

    project = ProjectParams.model_validate(raw)
    walls = {}
    for workers in (1, 2):
        root = Path(tempfile.mkdtemp(prefix="mlpipe-bench-speedup-"))
        _, walls[workers] = _study(dataset, parts, project, family, trials, workers, root, f"w{workers}")
    speedup = round(walls[1] / walls[2], 2)
    return {"data": name, "family": family, "trials": trials, "seconds": walls, "speedup": speedup}


DEFAULT_SETS = "ecg200:cnn,osuleaf:cnn,sst2:cnn,trec:cnn"  # issue 18's four


def rows_of(studies: dict, speed: dict | None) -> list[dict]:
    rows = []
    for key, study in studies.items():
        default, tuned, counts = study["default"], study["tuned"], study["counts"]
        rows += [
            {
                "figure": f"{key}: val accuracy, defaults -> tuned",
                "value": f"{default['val']} -> {tuned['val']}",
                "target": "higher",
                "met": tuned["val"] > default["val"],
            },
            {
                "figure": f"{key}: kept (best trial against the defaults on the check rows)",
                "value": f"{study.get('kept', 'tuned')}" + (f": {study['why']}" if "why" in study else ""),
                "target": "",
                "met": None,
            },
            {
                "figure": f"{key}: test accuracy, defaults -> tuned (judges, never chooses)",
                "value": f"{default['test']} -> {tuned['test']}",
                "target": "",
                "met": None,
            },
            {
                "figure": f"{key}: {study['trials']} trials, wall time (s)",
                "value": study["tuning_seconds"],
                "target": "",
                "met": None,
            },
            {
                "figure": f"{key}: trials pruned; training time pruning saved (s)",
                "value": f"{counts['PRUNED']} of {study['trials']}; {study['pruning_saved_seconds']}",
                "target": "",
                "met": None,
            },
        ]
    if speed:
        rows.append(
            {
                "figure": f"{speed['data']}:{speed['family']}: {speed['trials']} trials, 2 workers against 1",
                "value": f"{speed['speedup']}x ({speed['seconds']['1']} s -> {speed['seconds']['2']} s)",
                "target": "",
                "met": None,
            }
        )
    return rows


def main(sets: str = DEFAULT_SETS, trials: str = "20", speedup_set: str = "ecg200:cnn") -> None:
    """Studies are kept by data set and family: a later run of some of them keeps the others."""
    path = RESULTS / "tuning.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    studies, speed = dict(previous.get("studies", {})), previous.get("speedup")
    for item in filter(None, sets.split(",")):
        name, family = item.split(":")
        studies[item] = tune_one(name, family, int(trials))
        print(json.dumps(studies[item]), flush=True)
    if speedup_set != "none":
        speed = speedup(*speedup_set.split(":"))
        print(json.dumps(speed), flush=True)
    notes = (
        "Trials are judged on half of the validation rows (ties to the lower validation loss); the best "
        "trial's settings are kept only if they beat the defaults on the other half, else the defaults "
        "stay. The test accuracy beside it only shows whether that overfitted the validation rows."
    )
    save(
        "tuning",
        "Tuning with Optuna (issue 18)",
        rows_of(studies, speed),
        notes,
        {"studies": studies, "speedup": speed},
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
