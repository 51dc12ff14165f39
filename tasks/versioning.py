"""DVC: track a data folder and return its content hash (the data version)."""

from contextlib import contextmanager
from pathlib import Path

from tasks.errors import MlpipeError
from tasks.retrying import TransientError


def track_with_dvc(root: Path, target: Path) -> str:
    """`dvc add` the target inside the DVC repository at root; return its md5 hash."""
    import logging

    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo

    # DVC's hints about `git add` are for its own CLI; the data hash goes into MLflow's tags.
    logging.getLogger("dvc").setLevel(logging.WARNING)

    try:
        repo = Repo(str(root))
    except NotDvcRepoError:
        raise MlpipeError(f"{root} is not a DVC repository: run `dvc init` there or set MLPIPE_ROOT") from None
    with repo, dvc_lock(root):
        (stage,) = repo.add(str(target))
    # A folder's hash ends in ".dir"; the bare digest names the version.
    return stage.outs[0].hash_info.value.removesuffix(".dir")


@contextmanager
def dvc_lock(root: Path, timeout: float = 600):
    """One DVC writer at a time: DVC's own repository lock fails at once when held, so mlpipe's
    runs queue on this one instead. A `dvc` command started by hand still makes DVC raise
    LockError, which becomes a TransientError that the task retries."""
    from dvc.lock import LockError
    from filelock import FileLock, Timeout

    lock_dir = root / ".dvc" / "tmp"
    lock_dir.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(lock_dir / "mlpipe.lock", timeout=timeout):
            yield
    except Timeout:
        raise TransientError(f"another run has held {root}'s DVC lock for {timeout:.0f} s") from None
    except LockError as error:
        raise TransientError(f"DVC's lock in {root} is held by another process: {error}") from None
