"""Train one candidate network with Lightning and keep its best validation checkpoint."""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tasks.training.caching import training_key
from tasks.training.fitting import fit
from tasks.training.trainer import HELD_OUT, FitJob
from tasks.types import Dataset, Split, TrainConfig


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
    training_key: str = ""  # what the cache knows it by (tasks/training/caching.py)
    started_at: float = 0.0  # when training began and ended (Unix time): its MLflow run's times
    finished_at: float = 0.0
    # A fold's validation probabilities after each epoch (epochs, rows, classes); None elsewhere.
    held_out: np.ndarray | None = None

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
            "accumulate_grad_batches": config.accumulate_grad_batches,
            **({"refit_epochs": config.refit_epochs} if config.refit_epochs else {}),
            "init": config.init_label,
            **{f"init.{k}": v for k, v in config.init.items()},
            **{f"network.{k}": v for k, v in self.network_kwargs.items() if k != "backbone_config"},
            **({"lora": config.network["lora"]} if "lora" in config.network else {}),
            **{f"text.{k}": v for k, v in config.text.items()},
        }


def train(
    dataset: Dataset,
    split: Split,
    config: TrainConfig,
    out_dir: Path,
    on_epoch: Callable[[int, int], None] | None = None,
    callbacks: list | None = None,
    mirror: str | None = None,  # out_dir's copy in the object storage (fitting.fit)
    soft_train: np.ndarray | None = None,  # distillation: a teacher's probabilities of the training rows
    distillation: dict | None = None,  # ... and Classifier's temperature and soft_weight
) -> TrainedModel:
    import time

    from tasks.infra.settings import get_settings
    from tasks.training.starting import starting_point

    started_at = time.time()
    start = starting_point(dataset, split, config, out_dir, get_settings())
    job = _fit_job(dataset, split, config, out_dir, start, soft_train, distillation)
    result = fit(job, on_epoch, callbacks, mirror)
    network, best_epoch = _best_network(dataset.modality, config, start.network_kwargs, start.lora, result)
    return TrainedModel(
        family=config.family,
        network=network.eval(),
        network_kwargs=start.network_kwargs,
        preprocessing=start.preprocessing,
        config=config,
        checkpoint_path=Path(result.best_model_path),
        best_epoch=best_epoch,
        epochs_run=result.epochs_run,
        history=json.loads((out_dir / "history.json").read_text()),
        fit_seconds=result.fit_seconds,
        accelerator=result.accelerator,
        world_size=result.world_size,
        samples_per_rank=result.samples_per_rank,
        resumed_from_epoch=result.resumed_from_epoch,
        training_key=training_key(dataset, split, config),
        started_at=started_at,
        finished_at=time.time(),
        held_out=np.load(out_dir / HELD_OUT, allow_pickle=False) if (out_dir / HELD_OUT).exists() else None,
    )


def _fit_job(
    dataset: Dataset, split: Split, config: TrainConfig, out_dir: Path, start, soft_train, distillation
) -> FitJob:
    """The split's rows as the network's inputs, with everything else the fit needs from its starting point."""
    from models.preprocessing import model_inputs
    from tasks.training.features import class_weights

    info = start.preprocessing
    num_classes = len(dataset.classes)
    y_train = dataset.class_indices(split.train)
    x_train = model_inputs(dataset.frame.iloc[split.train], info)
    # A refit has no validation rows (tasks/evaluation/cross_validation.py): empty arrays of the inputs' shape.
    x_val = model_inputs(dataset.frame.iloc[split.val], info) if len(split.val) else x_train[:0]
    return FitJob(
        config=config,
        modality=dataset.modality,
        network_kwargs=start.network_kwargs,
        class_weights=class_weights(y_train, num_classes) if config.class_weighting == "sqrt" else None,
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=dataset.class_indices(split.val),
        out_dir=out_dir,
        soft_train=soft_train,
        distillation=distillation or {},
        init_weights=start.init_weights,
        lora=start.lora,
        keep_held_out="fold" in split.seeds,  # cross_validation.make_folds marks its folds
    )


def _best_network(modality: str, config: TrainConfig, network_kwargs: dict, lora: dict | None, result) -> tuple:
    """(the network with the fit's best weights, the epoch they are from)."""
    import torch

    from models.networks import build_network
    from tasks.training.initial import with_lora

    network = build_network(modality, config.family, **network_kwargs)
    if lora:
        network.encoder = with_lora(network.encoder, lora)
    best = torch.load(result.best_model_path, map_location="cpu", weights_only=True)
    # The checkpoint holds the LightningModule's state: the network's weights sit under "network.".
    weights = {k.removeprefix("network."): v for k, v in best["state_dict"].items() if k.startswith("network.")}
    network.load_state_dict(weights)
    if lora:  # adapters folded into the weights: the version serves without peft
        network = network.merge_adapters()
    return network, int(best["epoch"])
