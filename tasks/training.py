"""Train one candidate network with Lightning and keep its best validation checkpoint."""

import json
from dataclasses import dataclass, field
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

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


def train(dataset: Dataset, split: Split, config: TrainConfig, out_dir: Path) -> TrainedModel:
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
    result = fit(job)

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
    )


@task(name="train_model", cache_policy=NO_CACHE)
def train_model(dataset: Dataset, split: Split, config: TrainConfig, out_dir: Path) -> TrainedModel:
    return train(dataset, split, config, out_dir)
