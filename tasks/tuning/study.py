"""One family's study on one data set: trials train on the training rows, are judged on half of
the validation rows (the search rows: the kept weights' `val/accuracy`, as the pipeline chooses),
and stop early when the pruner finds them trailing. The other half (the check rows) no trial is
chosen by: the best trial's settings are kept only if they beat params.yaml's defaults, the
study's first trial, there (tasks/tuning/verdict.py). A study of 20 trials finds settings that
fit its rows by chance (sst2: validation up 1.45 points, test down 3.6); the check rows catch
that without the test rows, which are never read here.

Several processes (and machines) join a study by its name in the shared storage; the trial
budget is the study's, so a killed study resumes, and a rerun with the budget spent does nothing.
"""

import warnings
from dataclasses import dataclass
from pathlib import Path

from tasks.infra.params import ProjectParams, TuningParams
from tasks.infra.settings import Settings
from tasks.types import Dataset, Split

DIRECTION = "maximize"  # val/accuracy, ties broken by val/loss (objective_value)
DEFAULTS = "mlpipe.defaults"  # the user attribute of the trial of params.yaml's own settings
CHECK = "check/accuracy"  # a finished trial's accuracy on the check rows (a user attribute, never the objective)
CHECKED = "check/correct"  # which check rows it got right (packed bits), for the verdict's paired bootstrap
# Part of the study's name: change it whenever what a trial is judged on changes (`rows`,
# `objective_value`), so that trials judged otherwise are never compared.
OBJECTIVE = "search half, v2"


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
    # A small data set's folds (tasks/evaluation/cross_validation.py), as its runs choose on them:
    # then every trial trains on each fold, and the search and check rows halve the pooled rows.
    folds: list[Split] | None = None

    @property
    def tuning(self) -> TuningParams:
        return self.project.tuning

    @property
    def study_name(self) -> str:
        """Per data set and family, and per what its trials' figures depend on: the data version,
        the split's rows (another split would judge old trials on what are now test rows), the
        space, the family's own section, the epochs, the seed and the objective. Any change
        starts a new study."""
        from tasks.infra.fingerprints import digest

        space = {k: v.model_dump() if hasattr(v, "model_dump") else v for k, v in self.space.items()}
        section = self.project.network(self.dataset.modality, self.family).model_dump(exclude_none=True)
        split = (self.split.val.tolist(), self.split.test.tolist())
        trainer = (self.project.train.model_dump(), self.max_epochs, self.seed)
        key = digest(self.dataset.data_hash, split, space, section, trainer, OBJECTIVE, "folds" if self.folds else "")
        return f"{self.dataset.name}-{self.family}-{key[:10]}"

    @property
    def space(self) -> dict:
        return self.tuning.space(self.dataset.modality, self.family)

    def rows(self) -> tuple:
        """(search rows, check rows): the validation rows (with folds, the training and validation
        rows, each held out by one fold) halved within each class, by the seed."""
        import numpy as np

        from tasks.infra.errors import MlpipeError

        held_out = np.sort(np.concatenate([f.val for f in self.folds])) if self.folds else self.split.val
        if len(held_out) < 2:
            raise MlpipeError(
                f"tuning {self.dataset.name}: {len(held_out)} validation row(s) cannot be halved into "
                "search and check rows; raise split.val_fraction in params.yaml"
            )
        labels = self.dataset.class_indices(held_out)
        order = np.random.default_rng(self.seed).permutation(len(labels))
        # Each class's rows shuffled, one class after another, then dealt out in turn: each class
        # is halved (within one row), and so is the whole.
        dealt = np.concatenate([order[labels[order] == label] for label in np.unique(labels)])
        return held_out[np.sort(dealt[0::2])], held_out[np.sort(dealt[1::2])]


def open_study(job: TuneJob, worker: int = 0, enqueue: bool = True):
    """The study, created if new. With `enqueue` (a run that will tune), params.yaml's settings are
    its next trial unless a trial of them finished, runs or waits; reading a study changes nothing."""
    import optuna

    from tasks.tuning.storage import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tuning = job.tuning
    study = optuna.create_study(
        study_name=job.study_name,
        storage=open_storage(Settings(root=job.root)),
        direction=DIRECTION,
        load_if_exists=True,
        # Each worker samples with its own seed, or they would start with the same random trials.
        sampler=optuna.samplers.TPESampler(seed=job.seed + worker, n_startup_trials=tuning.startup_trials),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=tuning.startup_trials, n_warmup_steps=tuning.warmup_epochs),
    )
    if enqueue:
        # A trial whose worker was killed stops counting as running once its heartbeat is stale
        # (storage.py): failed, and retried once, here and not only inside a later optimize().
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        if not _defaults_pending_or_done(study):  # what the tuned settings must beat, trained first
            # No parameters: the trial trains params.yaml's settings as they are (trial.py's objective), so
            # the space need not hold them (a tokenizer's automatic length cannot be written in it).
            study.enqueue_trial({}, user_attrs={DEFAULTS: True})
    return study


def _defaults_pending_or_done(study) -> bool:
    """A trial of the defaults finished, runs or waits. One interrupted (Ctrl-C, a killed worker)
    is failed: it is enqueued again, and runs first, even when the budget is spent."""
    from optuna.trial import TrialState

    live = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)
    return any(t.user_attrs.get(DEFAULTS) and t.state in live for t in study.get_trials(deepcopy=False))


def counted(study) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def pack(correct) -> dict:
    """Right/wrong per row, as base64 of packed bits: about 1.4 KB for 8,000 rows."""
    import base64

    import numpy as np

    bits = np.packbits(np.asarray(correct, dtype=bool)).tobytes()
    return {"rows": len(correct), "bits": base64.b64encode(bits).decode()}


def unpack(packed: dict):
    import base64

    import numpy as np

    bits = np.unpackbits(np.frombuffer(base64.b64decode(packed["bits"]), dtype=np.uint8))
    return bits[: packed["rows"]].astype(bool)
