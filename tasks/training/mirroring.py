"""A candidate's checkpoints copied to the object storage as it trains, so that a fit killed on one
machine resumes on another (tasks/infra/objects.py): pulled before the fit, pushed each epoch."""

from pathlib import Path

from lightning.pytorch.callbacks import Callback

from tasks.infra.objects import exists, pull, push
from tasks.training.trainer import HELD_OUT

# What a fit leaves in its folder (trainer.py, fitting.py): where it resumes, what it kept, its
# curves, a fold's held-out probabilities, its end (last: written once the fit is done).
FILES = ("last.ckpt", "best.ckpt", "history.json", HELD_OUT, "result.json")


def pull_progress(url: str, folder: Path) -> None:
    """The shared copy into the folder, as one unit: when it holds a finished fit, or when this
    machine has no checkpoint of its own. A checkpoint here is kept: it is as new as the shared one
    or newer (the shared copy lags by the epoch in progress)."""
    if (folder / "result.json").exists():
        return  # finished here
    if exists(f"{url}/result.json") or not (folder / "last.ckpt").exists():
        pull(url, folder, FILES)


class MirrorCheckpoints(Callback):
    """Pushes the folder's files at the start of each epoch: Lightning writes the checkpoints last
    at the end of the one before (ModelCheckpoint runs after every other callback)."""

    def __init__(self, folder: Path, url: str) -> None:
        self.folder, self.url = folder, url

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:
            push(self.folder, self.url, FILES[:-1])
