"""Run `Trainer.fit` on prepared arrays, in this process or, on several devices, in a worker.

A fit keeps `last.ckpt` in its folder after every epoch and resumes from it when started again
(a killed run, a retried task), and writes `result.json` when done, so a finished fit is never
repeated. With more than one device Lightning starts one process per device by re-running the command
that started it. Re-running `mlpipe` (or a Prefect worker) would start a second pipeline, so
several devices train in a dedicated worker, `python -m tasks.fitting JOB`, which Lightning may
re-run safely. Workers never touch MLflow or Prefect: the pipeline process reads rank zero's
checkpoint and history and logs them once.
"""

import json
import logging
import pickle
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tasks.errors import MlpipeError
from tasks.files import read_json, write_atomic
from tasks.retrying import TransientError


@dataclass
class FitJob:
    """Everything a training process needs; picklable, so that a worker can take it."""

    modality: str
    family: str
    network_kwargs: dict
    optimiser: dict
    class_weights: np.ndarray | None
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    max_epochs: int
    batch_size: int
    patience: int
    monitor: str
    seed: int
    out_dir: Path
    devices: int = 1
    strategy: str = "auto"


@dataclass
class FitResult:
    best_model_path: str
    epochs_run: int
    fit_seconds: float
    accelerator: str
    world_size: int
    resumed_from_epoch: int = 0  # the epoch a killed or retried fit went on from; 0: from the start
    samples_per_rank: list[int] = field(default_factory=list)  # training samples each process saw in this fit


def fit(job: FitJob, on_epoch: Callable[[int, int], None] | None = None) -> FitResult:
    """Train on the devices the job asks for; several devices (or DDP) run in worker processes.

    on_epoch(epochs done, max epochs) reports progress (in this process only)."""
    from filelock import FileLock, Timeout

    job.out_dir.mkdir(parents=True, exist_ok=True)
    # Two identical runs at once share this folder: the second waits, then finds the first's result.
    lock = FileLock(job.out_dir.with_name(f".{job.out_dir.name}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        logging.getLogger("mlpipe.training").warning(
            "waiting for another run training %s in %s", job.family, job.out_dir
        )
        lock.acquire()
    try:
        done = _finished(job.out_dir)
        if done is not None:
            return done  # this very fit finished before
        if job.devices > 1 or job.strategy != "auto":
            return _fit_in_worker(job)
        result, _ = _fit(job, progress_bar=sys.stderr.isatty(), on_epoch=on_epoch)
        write_atomic(job.out_dir / "result.json", json.dumps(result.__dict__))
        return result
    finally:
        lock.release()


def _finished(out_dir: Path) -> FitResult | None:
    """The result of a fit that finished in out_dir; None for one cut short (no result, or a
    result.json that a kill left unreadable: trained again, from last.ckpt)."""
    recorded = read_json(out_dir / "result.json")
    if not isinstance(recorded, dict) or not (out_dir / "best.ckpt").exists():
        return None
    try:
        return FitResult(**recorded)
    except TypeError:  # written by another version of FitResult
        return None


def trainer_settings(devices: int = 1, strategy: str = "auto") -> dict:
    """Accelerator and precision: bf16 on a CUDA device that supports it, fp32 elsewhere."""
    import torch

    settings = {"accelerator": "auto", "devices": devices, "strategy": strategy}
    if torch.cuda.is_available():
        precision = "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
        return settings | {"precision": precision, "deterministic": False}
    # Deterministic kernels on the CPU make a seeded run repeatable.
    return settings | {"precision": "32-true", "deterministic": True}


def _fit(
    job: FitJob, progress_bar: bool = False, on_epoch: Callable[[int, int], None] | None = None
) -> tuple[FitResult, bool]:
    """The fit and whether this process is rank zero."""
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    from models.classifier import Classifier
    from models.data import ArrayDataModule
    from models.history import EpochProgress, MetricHistory, SamplesPerRank
    from models.networks import build_network

    _quiet_lightning()
    L.seed_everything(job.seed, workers=True, verbose=False)
    data = ArrayDataModule(job.x_train, job.y_train, job.x_val, job.y_val, batch_size=job.batch_size, seed=job.seed)
    network = build_network(job.modality, job.family, **job.network_kwargs)
    weights = torch.from_numpy(job.class_weights) if job.class_weights is not None else None
    module = Classifier(network, num_classes=job.network_kwargs["num_classes"], class_weights=weights, **job.optimiser)

    job.out_dir.mkdir(parents=True, exist_ok=True)
    mode = "min" if job.monitor.endswith("loss") else "max"
    # best.ckpt: the weights that scored best (weights only: half the bytes to write). last.ckpt:
    # everything, every epoch, where a killed fit resumes. Both written at the end of the training
    # epoch, once its metrics are logged; no version counter, so a resumed fit overwrites its own.
    saving = {"dirpath": job.out_dir, "save_on_train_epoch_end": True, "enable_version_counter": False}
    checkpoint = ModelCheckpoint(filename="best", monitor=job.monitor, mode=mode, save_weights_only=True, **saving)
    last = job.out_dir / "last.ckpt"
    resume_from = last if last.exists() else None
    callbacks = [
        MetricHistory(job.out_dir / "history.json"),  # before the checkpoints: last.ckpt holds its epoch
        checkpoint,
        ModelCheckpoint(filename="last", **saving),  # no monitor: keeps the newest epoch
        EarlyStopping(job.monitor, mode=mode, patience=job.patience),
    ]
    samples = SamplesPerRank()
    callbacks.append(samples)
    if on_epoch is not None:
        callbacks.append(EpochProgress(on_epoch))
    trainer = L.Trainer(
        max_epochs=job.max_epochs,
        callbacks=callbacks,
        logger=False,
        default_root_dir=job.out_dir,
        enable_progress_bar=progress_bar,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        **trainer_settings(job.devices, job.strategy),
    )
    resumed_from_epoch = torch.load(last, map_location="cpu", weights_only=False)["epoch"] + 1 if resume_from else 0
    if resume_from:
        logging.getLogger("mlpipe.training").warning(
            "resuming %s from epoch %d (%s)", job.family, resumed_from_epoch, last
        )
    started = time.perf_counter()
    try:
        trainer.fit(module, datamodule=data, ckpt_path=resume_from)
    except SystemExit:
        if trainer.interrupted:  # Lightning turns Ctrl-C into exit(1): the caller should see the Ctrl-C
            raise KeyboardInterrupt from None
        raise
    result = FitResult(
        best_model_path=checkpoint.best_model_path,
        epochs_run=trainer.current_epoch,
        fit_seconds=time.perf_counter() - started,
        accelerator=type(trainer.accelerator).__name__,
        world_size=trainer.world_size,
        resumed_from_epoch=resumed_from_epoch,
        samples_per_rank=samples.per_rank,
    )
    return result, trainer.is_global_zero


def _fit_in_worker(job: FitJob) -> FitResult:
    job.out_dir.mkdir(parents=True, exist_ok=True)
    job_path, result_path, log_path = (job.out_dir / name for name in ("job.pkl", "result.json", "workers.log"))
    job_path.write_bytes(pickle.dumps(job))
    result_path.unlink(missing_ok=True)
    with log_path.open("w") as log:
        # A group of its own: Lightning starts the other ranks from it, and they all stop with it.
        worker = subprocess.Popen(
            [sys.executable, "-m", "tasks.fitting", str(job_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            worker.wait()
        except BaseException:  # Ctrl-C, SIGTERM, a task timeout: no rank may train on alone
            _stop_group(worker)
            raise
    if worker.returncode != 0 or not result_path.exists():
        lines = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
        last = lines[-1] if lines else "no output"
        # A worker killed by a signal may well finish when tried again (from last.ckpt).
        error = TransientError if worker.returncode < 0 else MlpipeError
        raise error(
            f"training {job.family} on {job.devices} devices ({job.strategy}) failed with exit code "
            f"{worker.returncode}: {last} (log: {log_path})"
        )
    return FitResult(**read_json(result_path))


def _stop_group(worker: subprocess.Popen, grace: float = 10) -> None:
    """SIGTERM to the worker's group, then SIGKILL to what is left of it (ranks whose parent has
    gone): in a `finally`, so that a second Ctrl-C during the grace period cannot skip it."""
    import os
    import signal

    try:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=grace)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    finally:
        try:
            os.killpg(worker.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # the whole group is gone
        worker.wait()


def _quiet_lightning() -> None:
    # In-memory tensors need no loader workers; the hints about them and about GPUs are noise.
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*GPU available but not used.*")
    warnings.filterwarnings("ignore", ".*treespec, LeafSpec.*")  # lightning 2.6 on torch 2.13
    for name in ("lightning.pytorch", "lightning.fabric", "lightning_fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _worker_main(job_path: Path) -> None:
    """One rank of a multi-device fit; rank zero reports the result for the pipeline process."""
    job: FitJob = pickle.loads(job_path.read_bytes())
    result, rank_zero = _fit(job)
    if rank_zero:
        write_atomic(job.out_dir / "result.json", json.dumps(result.__dict__))


if __name__ == "__main__":
    _worker_main(Path(sys.argv[1]))
