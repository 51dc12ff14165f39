"""The training stage as Prefect tasks: a network candidate and the classical baseline."""

from pathlib import Path

from prefect import task

from tasks.infra.runs import run_logger
from tasks.infra.settings import get_settings
from tasks.training.baseline import TrainedBaseline, fit_baseline
from tasks.training.caching import training_key
from tasks.training.network import TrainedModel, train
from tasks.types import BaselineConfig, Dataset, Split, TrainConfig


def _training_cache_key(context, inputs: dict) -> str:
    return training_key(inputs["dataset"], inputs["split"], inputs["config"])


# Cached on the data version, the split, the whole config and the training code (caching.py):
# an unchanged candidate is read back, not trained. Retried once after a crash, from last.ckpt.
@task(name="train_model", cache_key_fn=_training_cache_key, persist_result=True, retries=1)
def train_model(
    dataset: Dataset, split: Split, config: TrainConfig, out_dir: Path, threads: int | None = None
) -> TrainedModel:
    """Train one candidate, showing its progress in the Prefect UI. `threads`: torch's threads for
    it, the run's own on a Dask worker (tasks/training/parallel.py); None: this process's."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    progress = _Progress(f"{dataset.name} / {config.family}: epochs done")
    mirror = get_settings().shared_url(out_dir)  # a fit killed on another machine resumes from there
    from tasks.training.progress import EpochLines  # Lightning: imported when a candidate trains

    epochs = [EpochLines(config.family)]  # in the terminal and the run's log
    model = train(dataset, split, config, out_dir, on_epoch=progress.report, callbacks=epochs, mirror=mirror)
    progress.report(1, 1)
    if model.resumed_from_epoch:
        run_logger("mlpipe.training").warning(
            "%s resumed from epoch %d of its last run", config.family, model.resumed_from_epoch
        )
    return model


class _Progress:
    """A progress artifact in the Prefect UI, best effort: an API that stops answering mid-fit
    loses the bar, never the training (one warning, then no more attempts)."""

    def __init__(self, description: str) -> None:
        from prefect.artifacts import create_progress_artifact

        self.id = self._attempt(lambda: create_progress_artifact(0.0, description=description))

    def report(self, done: int, total: int) -> None:
        from prefect.artifacts import update_progress_artifact

        if self.id is not None:
            self._attempt(lambda: update_progress_artifact(self.id, 100.0 * done / total))

    def _attempt(self, call):
        try:
            return call()
        except Exception as error:  # noqa: BLE001 - whatever the API's client raises
            run_logger("mlpipe.training").warning(
                "progress not shown in the Prefect UI: %s", " ".join(str(error).split())[:200]
            )
            self.id = None
            return None


# Cached like a network: on the data version, the split, its settings and the training code.
@task(name="train_baseline", cache_key_fn=_training_cache_key, persist_result=True)
def train_baseline(dataset: Dataset, split: Split, config: BaselineConfig) -> TrainedBaseline:
    """Fit the classical scikit-learn baseline on the networks' training rows."""
    return fit_baseline(dataset, split, config)
