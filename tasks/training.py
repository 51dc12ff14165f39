"""Train one candidate network with Lightning and keep its best validation checkpoint."""

import logging
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.datasets import Dataset, Split


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


def trainer_settings() -> dict:
    """Accelerator and precision: bf16 on a CUDA device that supports it, fp32 elsewhere.
    One device: several would make Lightning re-launch this process (see the README)."""
    import torch

    settings = {"accelerator": "auto", "devices": 1}
    if torch.cuda.is_available():
        precision = "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
        return settings | {"precision": precision, "deterministic": False}
    # Deterministic kernels on the CPU make a seeded run repeatable.
    return settings | {"precision": "32-true", "deterministic": True}


def train(dataset: Dataset, split: Split, config: TrainConfig, out_dir: Path) -> TrainedModel:
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    from models.classifier import Classifier
    from models.data import ArrayDataModule
    from models.history import MetricHistory
    from models.networks import build_network, shape_kwargs
    from models.preprocessing import model_inputs
    from tasks.features import class_weights, fit_preprocessing

    _quiet_lightning()
    L.seed_everything(config.seed, workers=True, verbose=False)
    info = fit_preprocessing(dataset, split, config.text)
    num_classes = len(dataset.classes)
    y_train = dataset.class_indices(split.train)
    data = ArrayDataModule(
        model_inputs(dataset.frame.iloc[split.train], info),
        y_train,
        model_inputs(dataset.frame.iloc[split.val], info),
        dataset.class_indices(split.val),
        batch_size=config.batch_size,
        seed=config.seed,
    )

    network_kwargs = {**shape_kwargs(info, config.family, num_classes), **config.network}
    network = build_network(dataset.modality, config.family, **network_kwargs)
    weights = torch.from_numpy(class_weights(y_train, num_classes)) if config.class_weighting == "sqrt" else None
    module = Classifier(network, num_classes=num_classes, class_weights=weights, **config.optimiser)

    out_dir.mkdir(parents=True, exist_ok=True)
    mode = "min" if config.monitor.endswith("loss") else "max"
    checkpoint = ModelCheckpoint(dirpath=out_dir, filename="best", monitor=config.monitor, mode=mode)
    history = MetricHistory(out_dir / "history.json")
    settings = trainer_settings()
    trainer = L.Trainer(
        max_epochs=config.max_epochs,
        callbacks=[checkpoint, EarlyStopping(config.monitor, mode=mode, patience=config.patience), history],
        logger=False,
        default_root_dir=out_dir,
        enable_progress_bar=sys.stderr.isatty(),
        enable_model_summary=False,
        num_sanity_val_steps=0,
        **settings,
    )
    started = time.perf_counter()
    trainer.fit(module, datamodule=data)
    fit_seconds = time.perf_counter() - started

    best = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)
    module.load_state_dict(best["state_dict"])
    best_path = Path(checkpoint.best_model_path)
    return TrainedModel(
        family=config.family,
        network=module.network.cpu().eval(),
        network_kwargs=network_kwargs,
        preprocessing=info,
        config=config,
        checkpoint_path=best_path,
        best_epoch=int(best["epoch"]),
        epochs_run=trainer.current_epoch,
        history=history.read(),
        fit_seconds=fit_seconds,
        accelerator=type(trainer.accelerator).__name__,
    )


def _quiet_lightning() -> None:
    # In-memory tensors need no loader workers; the hints about them and about GPUs are noise.
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*GPU available but not used.*")
    warnings.filterwarnings("ignore", ".*treespec, LeafSpec.*")  # lightning 2.6 on torch 2.13
    for name in ("lightning.pytorch", "lightning.fabric", "lightning_fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)


@task(name="train_model", cache_policy=NO_CACHE)
def train_model(dataset: Dataset, split: Split, config: TrainConfig, out_dir: Path) -> TrainedModel:
    return train(dataset, split, config, out_dir)
