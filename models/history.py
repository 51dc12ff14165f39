import json
from collections.abc import Callable
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Checkpoint


class MetricHistory(Checkpoint):
    """Writes each epoch's logged metrics to a JSON file.

    A file, not only an attribute, so that the curves outlive the process (and, with a
    multi-process strategy, come back from rank zero's worker). A `Checkpoint`, because Lightning
    calls those after the LightningModule's `on_train_epoch_end`, where the epoch's train
    metrics are logged; listed before ModelCheckpoint, it records the epoch before last.ckpt
    saves its state.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.epochs: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Validation runs before this hook, so train/* and val/* are both present.
        metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
        self.epochs.append({"epoch": trainer.current_epoch, **metrics})
        if trainer.is_global_zero:  # whole or not at all: another process reads it back
            partial = self.path.with_name(f".{self.path.name}.partial")
            partial.write_text(json.dumps(self.epochs))
            partial.replace(self.path)

    # Kept in every checkpoint, so that a resumed fit still has the curves of the epochs before.
    def state_dict(self) -> dict:
        return {"epochs": self.epochs}

    def load_state_dict(self, state_dict: dict) -> None:
        self.epochs = list(state_dict["epochs"])


class HeldOutProbabilities(Checkpoint):
    """Each epoch's class probabilities of the validation rows, as a (epochs, rows, classes) .npy
    file: a cross-validated choice scores a fold's network at the epoch its refit will stop at, not
    at the epoch the fold's own held-out rows found best, which would flatter it
    (tasks/evaluation/cross_validation.py). A `Checkpoint` kept in last.ckpt, as MetricHistory is,
    so that a resumed fit still has the epochs before; tensors, which a weights-only load reads."""

    BATCH = 256

    def __init__(self, path: Path) -> None:
        self.path = path
        self.epochs: list = []  # torch tensors (rows, classes), one per epoch

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        import torch

        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        # Every rank holds every validation row; rank zero scores them all, unsharded.
        x = trainer.datamodule.val.tensors[0]
        with torch.no_grad():
            batches = [pl_module.network(part.to(pl_module.device)) for part in x.split(self.BATCH)]
        probabilities = torch.softmax(torch.cat(batches).float(), dim=1).cpu()
        self.epochs = [*self.epochs[: trainer.current_epoch], probabilities]

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Once, at the end: until then the epochs live in last.ckpt's state, where a resumed fit finds them.
        import numpy as np
        import torch

        if not trainer.is_global_zero or not self.epochs:
            return
        partial = self.path.with_name(f".{self.path.name}.partial")
        with partial.open("wb") as file:  # np.save on a path would add ".npy"
            np.save(file, torch.stack(self.epochs).numpy(), allow_pickle=False)
        partial.replace(self.path)

    def state_dict(self) -> dict:
        return {"epochs": self.epochs}

    def load_state_dict(self, state_dict: dict) -> None:
        self.epochs = list(state_dict["epochs"])


class EpochProgress(L.Callback):
    """Calls on_epoch(epochs done, max epochs) after each training epoch, e.g. to show progress."""

    def __init__(self, on_epoch: Callable[[int, int], None]) -> None:
        self.on_epoch = on_epoch

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            self.on_epoch(trainer.current_epoch + 1, trainer.max_epochs)


class SamplesPerRank(L.Callback):
    """How many training samples each process saw: with several devices, proof that every rank
    trained on its share of the data (gathered at the end, while the process group is up)."""

    def __init__(self) -> None:
        self.seen = 0
        self.per_rank: list[int] = []

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        self.seen += len(batch[1])

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        import torch

        gathered = trainer.strategy.all_gather(torch.tensor(self.seen, device=pl_module.device))
        self.per_rank = [int(v) for v in gathered.reshape(-1).tolist()]


class StopAfterEpochs(L.Callback):
    """Stops after `epochs` epochs while the learning-rate schedule runs over max_epochs: a refit
    follows the schedule its folds followed up to their best epoch."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch + 1 >= self.epochs:
            trainer.should_stop = True
