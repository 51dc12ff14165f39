"""DVC: data versions, the default remote, push and pull, and restoring a version by its hash."""

import os
from contextlib import contextmanager
from pathlib import Path

from tasks.infra.errors import MlpipeError
from tasks.infra.retrying import TransientError

DEFAULT_REMOTE = "mlpipe-local"


def open_repo(root: Path):
    import logging

    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo

    # DVC's hints about `git add` are for its own CLI; mlpipe says what to commit itself.
    logging.getLogger("dvc").setLevel(logging.WARNING)
    try:
        return Repo(str(root))
    except NotDvcRepoError:
        raise MlpipeError(f"{root} is not a DVC repository: run `dvc init` there or set MLPIPE_ROOT") from None


def version_data(root: Path, target: Path) -> str:
    """The DVC hash of a data folder in the repository at root: its data version.

    A folder that a dvc.yaml stage produces (the built-in digits) is committed to DVC's cache
    and dvc.lock; any other is `dvc add`ed (data/<name>.dvc). Unchanged files are not hashed
    again: DVC keeps their mtimes."""
    # The first use of a repository gives it a remote (in .dvc/config.local, which no stage
    # tracks), so that `dvc push` just works, after `dvc repro` on a fresh clone too.
    ensure_remote(root)
    if os.environ.get("DVC_STAGE"):
        return _recorded_by_repro(root, target)
    with open_repo(root) as repo, dvc_lock(root):
        out = _find_out(repo, target)
        if out is not None and out.stage.cmd:
            (stage,) = repo.commit(str(target), force=True)
        else:
            (stage,) = repo.add(str(target))
    (out,) = [o for o in stage.outs if Path(o.fs_path) == target.resolve()]
    _finalize_now()
    # A folder's hash ends in ".dir"; the bare digest names the version.
    return out.hash_info.value.removesuffix(".dir")


def _finalize_now() -> None:
    """Collect DVC's git objects (dulwich's pack stores) now. Left to the garbage collector, their
    finalizers ran later, at any moment of training, and a SIGTERM that landed in one was lost
    (Python ignores an exception raised in a finalizer): the run did not stop as asked."""
    import gc

    gc.collect()


def _recorded_by_repro(root: Path, target: Path) -> str:
    """Inside a `dvc repro` stage, DVC holds the stage's data read-locked and has recorded its
    hash (in dvc.lock or its .dvc file) after bringing it up to date: read it, never write the
    data or its record."""
    with open_repo(root) as repo:
        out = _find_out(repo, target)
    if out is None or not out.hash_info.value:
        stage = os.environ["DVC_STAGE"]
        raise MlpipeError(f"dvc stage {stage}: DVC has no version of {target}: make it a dependency of the stage")
    return out.hash_info.value.removesuffix(".dir")


def _find_out(repo, target: Path):
    """The DVC output (of a stage or a .dvc file) at target, or None."""
    from dvc.exceptions import OutputNotFoundError

    try:
        (out,) = repo.find_outs_by_path(str(target))
    except OutputNotFoundError:
        return None
    return out


def recorded_hash(dvc_file: Path) -> str | None:
    """The data version a .dvc file records, without touching the data."""
    import yaml

    outs = (yaml.safe_load(dvc_file.read_text()) or {}).get("outs") or [{}]
    value = outs[0].get("md5")
    return value.removesuffix(".dir") if value else None


def default_remote_url() -> str:
    """dvc/ in the team's object storage (MLPIPE_STORAGE_URL), where every machine's clone finds
    what another pushed; else a folder outside every repository, shared by this machine's
    projects (MLPIPE_DVC_REMOTE moves it)."""
    from tasks.infra.settings import get_settings

    storage = get_settings().storage_url
    if storage is not None:
        return f"{storage}/dvc"
    folder = Path(os.environ.get("MLPIPE_DVC_REMOTE") or Path.home() / ".cache" / "mlpipe" / "dvc-remote")
    folder = folder.expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder)


def ensure_remote(root: Path) -> str:
    """The repository's default remote; where none is configured, a local folder set in
    .dvc/config.local (so nothing machine-specific is committed). Returns its URL."""
    with open_repo(root) as repo:
        config = repo.config
        remotes = config.get("remote", {})
        default = config.get("core", {}).get("remote")
        if default and default in remotes:
            return remotes[default]["url"]
        if len(remotes) == 1:
            return next(iter(remotes.values()))["url"]
        url = default_remote_url()
        with config.edit("local") as local:
            local.setdefault("remote", {})[DEFAULT_REMOTE] = {"url": url}
            local.setdefault("core", {})["remote"] = DEFAULT_REMOTE
        return url


def push(root: Path, targets: list[Path] | None = None) -> int:
    """Push data and DVC-tracked outputs (all of them, or the targets') to the default remote."""
    ensure_remote(root)
    with open_repo(root) as repo, dvc_lock(root):
        return repo.push(targets=[str(t) for t in targets] if targets else None)


def pull(root: Path, targets: list[Path] | None = None) -> list[str]:
    """Fetch from the default remote and check out into the workspace. DVC hashes what it
    downloads (the remote's `verify`, set in .dvc/config.local): a file changed on the shared
    remote is refused, never checked out as the version its hash names. Returns the stage outputs
    the remote lacks (made again by `dvc repro`)."""
    from dvc.exceptions import DvcException

    ensure_remote(root)
    with open_repo(root) as repo, dvc_lock(root):
        config = repo.config
        name = config.get("core", {}).get("remote") or next(iter(config["remote"]))
        if name not in config["remote"]:
            raise MlpipeError(f"{root}/.dvc/config names the default remote {name!r}, which it does not define")
        if not config["remote"][name].get("verify"):
            with config.edit("local") as local:
                local.setdefault("remote", {}).setdefault(name, {})["verify"] = True
    with open_repo(root) as repo, dvc_lock(root):
        try:
            if targets:
                repo.pull(targets=[str(t) for t in targets])
                return []
            # What a stage of dvc.yaml made (the built-in data, a model `dvc repro` trained) may be in
            # no remote a clone has: `dvc repro` or a run makes it again. A data set must come back.
            repo.pull(allow_missing=True)
        except DvcException as error:
            raise MlpipeError(f"dvc pull in {root} failed: {' '.join(str(error).split())}") from None
        missing = [
            (stage.is_data_source, str(out)) for stage in repo.index.stages for out in stage.outs if not out.exists
        ]
    if data_sets := [path for is_data, path in missing if is_data]:
        raise MlpipeError(
            f"dvc pull in {root} failed: Checkout failed for following targets: {', '.join(data_sets)} "
            "(not in the remote, or changed there)"
        )
    return [path for is_data, path in missing if not is_data]


def restore(root: Path, data_hash: str, folder: Path) -> Path:
    """Materialise the data version `data_hash` (a folder's md5) at `folder`, from DVC's cache or
    the remote: a .dvc file that names only the hash is enough for DVC to check it out."""
    import yaml

    folder.parent.mkdir(parents=True, exist_ok=True)
    # At the root: DVC refuses a .dvc file that git ignores, as one beside an outputs/ folder is.
    pointer = root / f".mlpipe-restore-{data_hash}.dvc"
    path = folder.resolve().relative_to(root.resolve()).as_posix()
    pointer.write_text(yaml.safe_dump({"outs": [{"md5": f"{data_hash}.dir", "path": path, "hash": "md5"}]}))
    try:
        pull(root, [pointer])
    finally:
        pointer.unlink(missing_ok=True)
    if not folder.exists():
        raise MlpipeError(f"data version {data_hash} is neither in DVC's cache nor on the remote {ensure_remote(root)}")
    return folder


@contextmanager
def dvc_lock(root: Path, timeout: float = 600):
    """One DVC writer at a time: DVC's own repository lock fails after a few seconds when held, so
    mlpipe's runs queue on this one instead. A `dvc` command started by hand still makes DVC raise
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
