"""One family's study on one data set: trials train on the training rows, are judged on the
validation rows (the kept weights' `val/accuracy`, as the pipeline chooses), and stop early when
the pruner finds them trailing. The test rows are never read here.

Several processes (and machines) join a study by its name in the shared storage; the trial
budget is the study's, so a killed study resumes, and a rerun with the budget spent does nothing.
"""

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from tasks.infra.params import ProjectParams, TuningParams
from tasks.infra.settings import Settings
from tasks.types import Dataset, Split

DIRECTION = "maximize"  # val/accuracy, ties broken by val/loss (objective_value)


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
    max_epochs: int | None = None  # per trial; None: the family's (params.yaml)
    threads: int = 0  # torch threads per worker; 0: torch's choice

    @property
    def tuning(self) -> TuningParams:
        return self.project.tuning

    @property
    def study_name(self) -> str:
        """Per data set and family, and per what its trials' figures depend on: the data version,
        the split (another split would judge old trials on what are now test rows), the space,
        the family's own section and the epochs. Any change starts a new study."""
        from tasks.infra.fingerprints import digest

        space = {k: v.model_dump() if hasattr(v, "model_dump") else v for k, v in self.space.items()}
        section = self.project.network(self.dataset.modality, self.family).model_dump(exclude_none=True)
        split = (self.split.seeds, self.split.fractions, len(self.split.train), len(self.split.val))
        key = digest(self.dataset.data_hash, split, space, section, self.project.train.model_dump(), self.max_epochs)
        return f"{self.dataset.name}-{self.family}-{key[:10]}"

    @property
    def space(self) -> dict:
        return self.tuning.space(self.dataset.modality, self.family)


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
    # A trial that fails (a setting the data cannot take, a worker out of memory) is recorded as
    # failed and the study goes on; tune_family says so when none finished.
    study.optimize(
        lambda trial: _objective(job, trial),
        n_trials=job.trials,
        timeout=job.timeout_seconds,
        callbacks=[budget],
        catch=(Exception,),
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
    chosen = suggest(trial, job.space)
    config = train_config(job.project, dataset.modality, job.family, job.seed, max_epochs=job.max_epochs, tuned=chosen)
    out_dir = Settings(root=job.root).outputs_dir / dataset.name / "tuning" / job.study_name / f"trial-{trial.number}"
    outcome = {"dataset": dataset.name, "state": "FAIL", "started_at": time.time()}
    try:
        model = train(dataset, split, config, out_dir, callbacks=[PruneOnValidation(trial)])
        probabilities = model.predict_proba(dataset.frame.iloc[split.val])
        scores = scores_of(probabilities, dataset.class_indices(split.val), len(dataset.classes))
        scores |= {"train/seconds": model.fit_seconds, "train/best_epoch": model.best_epoch}
        outcome |= {"state": "COMPLETE", "scores": scores, "history": model.history, "run_params": model.run_params()}
        trial.set_user_attr(SELECTED_BY, scores[SELECTED_BY])
        return objective_value(scores, len(split.val))
    except optuna.TrialPruned as pruned:
        outcome |= {"state": "PRUNED", "note": str(pruned), "history": _history(out_dir)}
        raise
    except Exception as error:
        outcome |= {"note": f"{type(error).__name__}: {error}", "history": _history(out_dir)}
        raise
    finally:
        outcome["finished_at"] = time.time()
        try:
            log_trial(job.experiment_id, job.parent_run_id, trial, job.family, outcome)
        except Exception as error:  # the trial's result is in the study: a lost MLflow run must not undo it
            logging.getLogger("mlpipe.tuning").warning("trial %d not logged to MLflow: %s", trial.number, error)
        shutil.rmtree(out_dir, ignore_errors=True)  # the settings are what a trial leaves behind


def objective_value(scores: dict, val_rows: int) -> float:
    """val/accuracy, ties broken by the lower val/loss, as the pipeline's choice breaks them: on a
    small validation set many trials reach the same accuracy (often 1.0), and the first of them
    would win by luck. The loss term stays below one accuracy step (1 / val_rows)."""
    return scores["val/accuracy"] - min(scores["val/loss"], 16.0) / (20.0 * val_rows)


def _history(out_dir: Path) -> list[dict]:
    from tasks.infra.files import read_json

    return read_json(out_dir / "history.json") or []
