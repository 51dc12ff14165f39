"""One family's study on one data set: trials train on the training rows, are judged on the
validation rows (the kept weights' `val/accuracy`, as the pipeline chooses), and stop early when
the pruner finds them trailing. The test rows are never read here.

Several processes (and machines) join a study by its name in the shared storage; the trial
budget is the study's, so a killed study resumes, and a rerun with the budget spent does nothing.
"""

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from tasks.infra.params import ProjectParams, TuningParams
from tasks.infra.settings import Settings
from tasks.types import Dataset, Split

DIRECTION = "maximize"  # val/accuracy


@dataclass
class TuneJob:
    """What a tuning worker needs; picklable, so that a worker process can take it."""

    dataset: Dataset
    split: Split
    project: ProjectParams
    family: str
    seed: int
    trials: int  # the study's budget: finished and pruned trials count
    timeout_seconds: float | None
    root: Path  # the project: settings, and the trials' folders under outputs/
    experiment_id: str
    parent_run_id: str
    threads: int = 0  # torch threads per worker; 0: torch's choice
    extra: dict = field(default_factory=dict)

    @property
    def tuning(self) -> TuningParams:
        return self.project.tuning

    @property
    def study_name(self) -> str:
        """Per data set, family and data version: trials on other data say nothing of this one."""
        return f"{self.dataset.name}-{self.family}-{self.dataset.data_hash[:8]}"


def open_study(job: TuneJob, worker: int = 0):
    import optuna

    from tasks.tuning.storage import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tuning = job.tuning
    return optuna.create_study(
        study_name=job.study_name,
        storage=open_storage(Settings(root=job.root)),
        direction=DIRECTION,
        load_if_exists=True,
        # Each worker samples with its own seed, or they would start with the same random trials.
        sampler=optuna.samplers.TPESampler(seed=job.seed + worker, n_startup_trials=tuning.startup_trials),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=tuning.startup_trials, n_warmup_steps=tuning.warmup_epochs),
    )


def counted(study) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def run_study(job: TuneJob, worker: int = 0) -> None:
    """Trials until the study's budget is spent (or the timeout): one worker's share."""
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    if job.threads:
        import torch

        torch.set_num_threads(job.threads)
    study = open_study(job, worker)
    if counted(study) >= job.trials:
        return
    budget = MaxTrialsCallback(job.trials, states=(TrialState.COMPLETE, TrialState.PRUNED))
    study.optimize(
        lambda trial: _objective(job, trial), n_trials=job.trials, timeout=job.timeout_seconds, callbacks=[budget]
    )


def _objective(job: TuneJob, trial) -> float:
    import optuna

    from tasks.evaluation.selection import SELECTED_BY, scores_of
    from tasks.training.config import train_config
    from tasks.training.network import train
    from tasks.tuning.pruning import PruneOnValidation
    from tasks.tuning.space import suggest
    from tasks.tuning.tracking import log_trial

    dataset, split = job.dataset, job.split
    chosen = suggest(trial, job.tuning.space(dataset.modality, job.family))
    config = train_config(job.project, dataset.modality, job.family, job.seed, tuned=chosen)
    out_dir = Settings(root=job.root).outputs_dir / dataset.name / "tuning" / job.study_name / f"trial-{trial.number}"
    outcome = {"dataset": dataset.name, "state": "FAIL", "started_at": time.time()}
    try:
        model = train(dataset, split, config, out_dir, callbacks=[PruneOnValidation(trial)])
        probabilities = model.predict_proba(dataset.frame.iloc[split.val])
        scores = scores_of(probabilities, dataset.class_indices(split.val), len(dataset.classes))
        scores |= {"train/seconds": model.fit_seconds, "train/best_epoch": model.best_epoch}
        outcome |= {"state": "COMPLETE", "scores": scores, "history": model.history, "run_params": model.run_params()}
        return scores[SELECTED_BY]
    except optuna.TrialPruned as pruned:
        outcome |= {"state": "PRUNED", "note": str(pruned), "history": _history(out_dir)}
        raise
    except Exception as error:
        outcome |= {"note": f"{type(error).__name__}: {error}", "history": _history(out_dir)}
        raise
    finally:
        outcome["finished_at"] = time.time()
        log_trial(job.experiment_id, job.parent_run_id, trial, job.family, outcome)
        shutil.rmtree(out_dir, ignore_errors=True)  # the settings are what a trial leaves behind


def _history(out_dir: Path) -> list[dict]:
    from tasks.infra.files import read_json

    return read_json(out_dir / "history.json") or []
