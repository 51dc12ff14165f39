"""Lightning's Trainer on a FitJob's prepared arrays, in this process: one rank of a fit.

Every epoch leaves `last.ckpt` in the job's folder, where a killed fit resumes, and `best.ckpt`,
the weights that scored best on the monitored validation metric."""

import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tasks.infra.files import file_sha256
from tasks.types import TrainConfig

HELD_OUT = "held_out.npy"  # a fold's validation probabilities per epoch (models/history.py)


@dataclass
class FitJob:
    """Everything a training process needs; picklable, so that a worker can take it."""

    config: TrainConfig
    modality: str
    network_kwargs: dict  # the config's network keys and the shapes of the data
    class_weights: np.ndarray | None
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    out_dir: Path
    soft_train: np.ndarray | None = None  # distillation: the teacher's probabilities of the training rows
    distillation: dict = field(default_factory=dict)  # temperature, soft_weight
    init_weights: Path | None = None  # the network's starting state (tasks/training/starting.py); None: random
    lora: dict | None = None  # LoRA adapters on a pretrained encoder
    keep_held_out: bool = False  # a fold of a cross-validated choice: each epoch's validation probabilities kept


@dataclass
class FitResult:
    best_model_path: str
    epochs_run: int
    fit_seconds: float
    accelerator: str
    world_size: int
    resumed_from_epoch: int = 0  # the epoch a killed or retried fit went on from; 0: from the start
    samples_per_rank: list[int] = field(default_factory=list)  # training samples each process saw in this fit
    best_sha256: str = ""  # of best.ckpt: a result read back (pulled from another machine) must name its weights


def trainer_settings(devices: int = 1, strategy: str = "auto") -> dict:
    """Accelerator and precision: bf16 on a CUDA device that supports it, fp32 elsewhere."""
    import torch

    settings = {"accelerator": "auto", "devices": devices, "strategy": strategy}
    if torch.cuda.is_available():
        precision = "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
        return settings | {"precision": precision, "deterministic": False}
    # The CPU's kernels repeat a seeded run as they are (tests/test_training.py): torch's
    # deterministic mode would only make its convolutions' backward pass 16 times slower (oneDNN off).
    return settings | {"precision": "32-true", "deterministic": False}


def run_trainer(
    job: FitJob,
    on_epoch: Callable[[int, int], None] | None = None,
    callbacks: list | None = None,
) -> tuple[FitResult, bool]:
    """The fit and whether this process is rank zero."""
    import lightning as L

    from models.history import SamplesPerRank

    quiet_lightning()
    config = job.config
    L.seed_everything(config.seed, workers=True, verbose=False)
    data, module = _data_and_module(job)
    job.out_dir.mkdir(parents=True, exist_ok=True)
    last = job.out_dir / "last.ckpt"
    resumed_from_epoch = resumable_epoch(last)
    resume_from = last if resumed_from_epoch is not None else None
    best, stopping = _best_and_stopping(config, job.out_dir)
    samples = SamplesPerRank()
    trainer = _lightning_trainer(config, job.out_dir, _callbacks(job, best, stopping, samples, on_epoch, callbacks))
    if resume_from:
        logging.getLogger("mlpipe.training").warning(
            "resuming %s from epoch %d (%s)", config.family, resumed_from_epoch, last
        )
    started = time.perf_counter()
    _fit(trainer, module, data, resume_from)
    result = FitResult(
        best_model_path=best.best_model_path,
        epochs_run=trainer.current_epoch,
        fit_seconds=time.perf_counter() - started,
        accelerator=type(trainer.accelerator).__name__,
        world_size=trainer.world_size,
        resumed_from_epoch=resumed_from_epoch or 0,
        samples_per_rank=samples.per_rank,
        best_sha256=file_sha256(best.best_model_path) if trainer.is_global_zero else "",
    )
    return result, trainer.is_global_zero


def _data_and_module(job: FitJob) -> tuple:
    """The job's arrays as a data module, and the LightningModule around its starting network."""
    import torch

    from models.classifier import Classifier
    from models.datamodule import ArrayDataModule
    from tasks.training.initial import initial_network

    config = job.config
    data = ArrayDataModule(
        job.x_train,
        job.y_train,
        job.x_val,
        job.y_val,
        batch_size=config.batch_size,
        seed=config.seed,
        soft_train=job.soft_train,
    )
    network = initial_network(job.modality, config.family, job.network_kwargs, job.init_weights, job.lora)
    weights = torch.from_numpy(job.class_weights) if job.class_weights is not None else None
    module = Classifier(
        network,
        num_classes=job.network_kwargs["num_classes"],
        class_weights=weights,
        **config.optimiser,
        **job.distillation,
    )
    return data, module


def _saving(out_dir: Path) -> dict:
    """best.ckpt: the weights that scored best (weights only: half the bytes to write). last.ckpt:
    everything, every epoch, where a killed fit resumes. Both written at the end of the training
    epoch, once its metrics are logged; no version counter, so a resumed fit overwrites its own."""
    return {"dirpath": out_dir, "save_on_train_epoch_end": True, "enable_version_counter": False}


def _best_and_stopping(config: TrainConfig, out_dir: Path) -> tuple:
    """best.ckpt's checkpoint and the callback that ends the fit."""
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    from models.history import StopAfterEpochs

    if config.refit_epochs:  # no rows to judge on: the epochs the folds found, the last weights kept
        # "epoch" is among what a checkpoint can monitor: the highest is the last.
        best = ModelCheckpoint(filename="best", monitor="epoch", mode="max", save_weights_only=True, **_saving(out_dir))
        return best, StopAfterEpochs(config.refit_epochs)
    mode = "min" if config.monitor.endswith("loss") else "max"
    kept = {"monitor": config.monitor, "mode": mode}
    best = ModelCheckpoint(filename="best", save_weights_only=True, **kept, **_saving(out_dir))
    return best, EarlyStopping(config.monitor, mode=mode, patience=config.patience)


def _callbacks(job: FitJob, best, stopping, samples, on_epoch, extra: list | None) -> list:
    """The fit's callbacks in their order: the history (and held-out probabilities) before the
    checkpoints, as last.ckpt holds their epoch; then the stopping, the samples, the progress, the caller's."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    from models.history import EpochProgress, HeldOutProbabilities, MetricHistory

    callbacks = [
        MetricHistory(job.out_dir / "history.json"),
        best,
        ModelCheckpoint(filename="last", **_saving(job.out_dir)),  # no monitor: keeps the newest epoch
        stopping,
    ]
    if job.keep_held_out:
        callbacks.insert(1, HeldOutProbabilities(job.out_dir / HELD_OUT))
    callbacks.append(samples)
    if on_epoch is not None:
        callbacks.append(EpochProgress(on_epoch))
    return callbacks + (extra or [])


def _lightning_trainer(config: TrainConfig, out_dir: Path, callbacks: list):
    import lightning as L

    return L.Trainer(
        max_epochs=config.max_epochs,
        accumulate_grad_batches=config.accumulate_grad_batches,
        callbacks=callbacks,
        logger=False,
        default_root_dir=out_dir,
        enable_progress_bar=False,  # per step; tasks/training/progress.py shows epochs
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0 if config.refit_epochs else None,
        **trainer_settings(config.devices, config.strategy),
    )


def _fit(trainer, module, data, resume_from: Path | None) -> None:
    try:  # weights only: a checkpoint pulled from shared storage is data, never code to run
        trainer.fit(module, datamodule=data, ckpt_path=resume_from, weights_only=True)
    except SystemExit:
        if trainer.interrupted:  # Lightning turns Ctrl-C into exit(1): the caller should see the Ctrl-C
            raise KeyboardInterrupt from None
        raise


def resumable_epoch(last: Path) -> int | None:
    """The epoch a fit goes on from with `last` (None: none to go on from). A checkpoint is read as
    weights only: one that is not plain tensors and numbers (a tampered file, a pickle that would
    run code) is set aside and said in one line, and the fit starts again from the beginning."""
    import pickle

    import torch

    if not last.exists():
        return None
    try:
        return int(torch.load(last, map_location="cpu", weights_only=True)["epoch"]) + 1
    except (pickle.UnpicklingError, RuntimeError, EOFError, KeyError, TypeError, ValueError) as error:
        refused = last.with_name(f"{last.name}.refused")
        last.replace(refused)
        reason = " ".join(str(error).split())[:160]
        logging.getLogger("mlpipe.training").warning(
            "%s is no checkpoint to resume from (%s: %s): moved to %s, training from the start",
            last, type(error).__name__, reason, refused.name,
        )  # fmt: skip
        return None


def quiet_lightning() -> None:
    # In-memory tensors need no loader workers; the hints about them and about GPUs are noise.
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*GPU available but not used.*")
    warnings.filterwarnings("ignore", ".*exists and is not empty.*")  # the fit's folder holds its starting weights
    warnings.filterwarnings("ignore", ".*treespec, LeafSpec.*")  # lightning 2.6 on torch 2.13
    for name in ("lightning.pytorch", "lightning.fabric", "lightning_fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
