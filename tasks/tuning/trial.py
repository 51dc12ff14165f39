"""A worker's trials of a study (`run_study`), and one trial (`objective`): train the suggested
settings (on the run's split, or on each of a small data set's folds), judge them on the search
rows, and score them on the check rows for the verdict (tasks/tuning/verdict.py). Pruned, failed
or finished, a trial is logged to MLflow and its folder removed: the settings are what it leaves."""

import logging
import shutil
import time
from dataclasses import replace
from pathlib import Path

from tasks.infra.settings import Settings
from tasks.tuning.study import CHECK, CHECKED, DEFAULTS, TuneJob, counted, open_study, pack


def run_study(job: TuneJob, worker: int = 0) -> None:
    """Trials until the study's budget is spent (or the timeout): one worker's share."""
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    from tasks.training.progress import TrialLines

    if job.threads:
        import torch

        torch.set_num_threads(job.threads)
    study = open_study(job, worker)
    trials, callbacks = job.trials, [MaxTrialsCallback(job.trials, states=(TrialState.COMPLETE, TrialState.PRUNED))]
    if counted(study) >= job.trials:
        # The budget is spent; only an enqueued trial (a retry of the defaults') still runs, by one worker.
        waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        if not waiting or worker:
            return
        trials, callbacks = len(waiting), []
    progress = TrialLines(f"{job.dataset.name}/{job.family}", job.trials, counted(study))
    # A trial that fails (a setting the data cannot take, a worker out of memory) is recorded as
    # failed and the study goes on; tune_family says so when none finished.
    try:
        study.optimize(
            lambda trial: objective(job, trial),
            n_trials=trials,
            timeout=job.timeout_seconds,
            callbacks=[*callbacks, progress],
            catch=(Exception,),
        )
    finally:
        progress.close()


def objective(job: TuneJob, trial) -> float:
    import optuna

    from tasks.evaluation.selection import SELECTED_BY, scores_of
    from tasks.training.config import train_config
    from tasks.tuning.pruning import PruneOnValidation
    from tasks.tuning.space import suggest
    from tasks.tuning.tracking import log_trial

    dataset = job.dataset
    search, check = job.rows()
    defaults = bool(trial.user_attrs.get(DEFAULTS))
    chosen = None if defaults else suggest(trial, job.space)  # the defaults' trial: params.yaml as it is
    config = train_config(job.project, dataset.modality, job.family, job.seed, max_epochs=job.max_epochs, tuned=chosen)
    out_dir = Settings(root=job.root).outputs_dir / dataset.name / "tuning" / job.study_name / f"trial-{trial.number}"
    outcome = {"dataset": dataset.name, "state": "FAIL", "started_at": time.time(), "defaults": defaults}
    try:
        # Early stopping, the kept epoch and the pruner see the search rows only (the first fold's, with folds).
        pruning = [] if defaults else [PruneOnValidation(trial)]  # the defaults are what the rest must beat
        model, predict_proba, seconds = _fit(job, config, search, out_dir, pruning)

        def scored(rows) -> dict:
            return scores_of(predict_proba(rows), dataset.class_indices(rows), len(dataset.classes))

        scores = scored(search) | {"train/seconds": seconds, "train/best_epoch": model.best_epoch}
        correct = predict_proba(check).argmax(axis=1) == dataset.class_indices(check)
        scores[CHECK] = float(correct.mean())
        outcome |= {"state": "COMPLETE", "scores": scores, "history": model.history, "run_params": model.run_params()}
        trial.set_user_attr(SELECTED_BY, scores[SELECTED_BY])
        trial.set_user_attr(CHECK, scores[CHECK])
        trial.set_user_attr(CHECKED, pack(correct))
        return objective_value(scores, len(search))
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


def _fit(job: TuneJob, config, search, out_dir: Path, pruning: list) -> tuple:
    """(the trial's first model, rows -> probabilities, training seconds): one model on the run's
    split, or one per fold, each row predicted by the fold that held it out."""
    import numpy as np

    from tasks.training.network import train

    if not job.folds:
        model = train(job.dataset, replace(job.split, val=search), config, out_dir, callbacks=pruning)
        return model, lambda rows: model.predict_proba(job.dataset.frame.iloc[rows]), model.fit_seconds
    probabilities, models = {}, []
    for i, fold in enumerate(job.folds):
        fold_search = np.intersect1d(fold.val, search)
        fitted = train(job.dataset, replace(fold, val=fold_search), config, out_dir / f"fold-{i}", callbacks=pruning)
        pruning, models = [], [*models, fitted]  # the pruner compares the first fold's epochs across trials
        probabilities.update(zip(fold.val, fitted.predict_proba(job.dataset.frame.iloc[fold.val]), strict=True))
    return models[0], lambda rows: np.stack([probabilities[r] for r in rows]), sum(m.fit_seconds for m in models)


def objective_value(scores: dict, val_rows: int) -> float:
    """val/accuracy, ties broken by the lower val/loss, as the pipeline's choice breaks them: on a
    small validation set many trials reach the same accuracy (often 1.0), and the first of them
    would win by luck. The loss term stays below one accuracy step (1 / val_rows)."""
    return scores["val/accuracy"] - min(scores["val/loss"], 16.0) / (20.0 * val_rows)


def _history(out_dir: Path) -> list[dict]:
    from tasks.infra.files import read_json

    return read_json(out_dir / "history.json") or []
