"""Train one candidate network with Lightning and keep its best validation checkpoint."""

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from prefect import get_run_logger, task

from tasks.baseline import BaselineConfig, TrainedBaseline, fit_baseline
from tasks.caching import training_key
from tasks.datasets import Dataset, Split
from tasks.fitting import FitJob, fit


@dataclass
class TrainConfig:
    family: str
    max_epochs: int
    batch_size: int
    patience: int
    seed: int
    monitor: str = "val/loss"  # picks the checkpoint and stops early; a *loss is minimised, else maximised
    class_weighting: str = "sqrt"  # "sqrt": square-rooted inverse class frequency in the loss; "none"
    optimiser: dict = field(default_factory=dict)  # learning_rate, weight_decay
    network: dict = field(default_factory=dict)  # the family's own keyword arguments
    text: dict = field(default_factory=dict)  # tokenizer settings for text: vocab_size, max_length
    devices: int = 1  # more than one trains in worker processes (tasks/fitting.py)
    strategy: str = "auto"  # Lightning's: auto, ddp, ...


@dataclass
class TrainedModel:
    family: str
    network: object  # torch.nn.Module on the CPU, in eval mode, with the best weights
    network_kwargs: dict
    preprocessing: dict  # raw rows -> inputs, as the served model will do it
    config: TrainConfig
    checkpoint_path: Path
    best_epoch: int
    epochs_run: int
    history: list[dict]  # per epoch: epoch, train/loss, val/loss, val/accuracy, ...
    fit_seconds: float
    accelerator: str
    world_size: int = 1  # processes that trained it
    samples_per_rank: list[int] = field(default_factory=list)  # training samples each of them saw
    resumed_from_epoch: int = 0  # > 0 when a killed or retried fit went on from its last checkpoint
    training_key: str = ""  # what the cache knows it by (tasks/caching.py)

    def predict_proba(self, frame) -> "np.ndarray":
        """Raw rows -> (N, classes) probabilities, through the preprocessing the served model uses."""
        from models.networks import predict_probabilities
        from models.preprocessing import model_inputs

        return predict_probabilities(self.network, model_inputs(frame, self.preprocessing))

    def run_params(self) -> dict:
        config = self.config
        return {
            "family": self.family,
            "max_epochs": config.max_epochs,
            "batch_size": config.batch_size,
            "patience": config.patience,
            "seed": config.seed,
            "devices": config.devices,
            "strategy": config.strategy,
            **config.optimiser,
            "monitor": config.monitor,
            "class_weighting": config.class_weighting,
            **{f"network.{k}": v for k, v in self.network_kwargs.items()},
            **{f"text.{k}": v for k, v in config.text.items()},
        }


def train(
    dataset: Dataset,
    split: Split,
    config: TrainConfig,
    out_dir: Path,
    on_epoch: Callable[[int, int], None] | None = None,
) -> TrainedModel:
    import torch

    from models.networks import build_network, shape_kwargs
    from models.preprocessing import model_inputs
    from tasks.features import class_weights, fit_preprocessing

    info = fit_preprocessing(dataset, split, config.text)
    num_classes = len(dataset.classes)
    y_train = dataset.class_indices(split.train)
    network_kwargs = {**shape_kwargs(info, config.family, num_classes), **config.network}
    job = FitJob(
        modality=dataset.modality,
        family=config.family,
        network_kwargs=network_kwargs,
        optimiser=config.optimiser,
        class_weights=class_weights(y_train, num_classes) if config.class_weighting == "sqrt" else None,
        x_train=model_inputs(dataset.frame.iloc[split.train], info),
        y_train=y_train,
        x_val=model_inputs(dataset.frame.iloc[split.val], info),
        y_val=dataset.class_indices(split.val),
        max_epochs=config.max_epochs,
        batch_size=config.batch_size,
        patience=config.patience,
        monitor=config.monitor,
        seed=config.seed,
        out_dir=out_dir,
        devices=config.devices,
        strategy=config.strategy,
    )
    result = fit(job, on_epoch)

    network = build_network(dataset.modality, config.family, **network_kwargs)
    best = torch.load(result.best_model_path, map_location="cpu", weights_only=True)
    # The checkpoint holds the LightningModule's state: the network's weights sit under "network.".
    weights = {k.removeprefix("network."): v for k, v in best["state_dict"].items() if k.startswith("network.")}
    network.load_state_dict(weights)
    return TrainedModel(
        family=config.family,
        network=network.eval(),
        network_kwargs=network_kwargs,
        preprocessing=info,
        config=config,
        checkpoint_path=Path(result.best_model_path),
        best_epoch=int(best["epoch"]),
        epochs_run=result.epochs_run,
        history=json.loads((out_dir / "history.json").read_text()),
        fit_seconds=result.fit_seconds,
        accelerator=result.accelerator,
        world_size=result.world_size,
        samples_per_rank=result.samples_per_rank,
        resumed_from_epoch=result.resumed_from_epoch,
        training_key=training_key(dataset, split, config),
    )


def _training_cache_key(context, inputs: dict) -> str:
    return training_key(inputs["dataset"], inputs["split"], inputs["config"])


# Cached on the data version, the split, the whole config and the training code (tasks/caching.py):
# an unchanged candidate is read back, not trained. Retried once after a crash, from last.ckpt.
@task(name="train_model", cache_key_fn=_training_cache_key, persist_result=True, retries=1)
def train_model(dataset: Dataset, split: Split, config: TrainConfig, out_dir: Path) -> TrainedModel:
    """Train one candidate, showing its progress in the Prefect UI."""
    progress = _Progress(f"{dataset.name} / {config.family}: epochs done")
    model = train(dataset, split, config, out_dir, on_epoch=progress.report)
    progress.report(1, 1)
    if model.resumed_from_epoch:
        get_run_logger().warning("%s resumed from epoch %d of its last run", config.family, model.resumed_from_epoch)
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
            _logger().warning("progress not shown in the Prefect UI: %s", " ".join(str(error).split())[:200])
            self.id = None
            return None


def _logger():
    from prefect.exceptions import MissingContextError

    try:
        return get_run_logger()
    except MissingContextError:  # called outside a run
        return logging.getLogger("mlpipe.training")


def _baseline_cache_key(context, inputs: dict) -> str:
    return training_key(inputs["dataset"], inputs["split"], inputs["config"])


# Cached like a network: on the data version, the split, its settings and the training code.
@task(name="train_baseline", cache_key_fn=_baseline_cache_key, persist_result=True)
def train_baseline(dataset: Dataset, split: Split, config: BaselineConfig) -> TrainedBaseline:
    """Fit the classical scikit-learn baseline on the networks' training rows."""
    return fit_baseline(dataset, split, config)
