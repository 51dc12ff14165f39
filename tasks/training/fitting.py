"""A candidate's fit, done once: a fit keeps its checkpoints in its folder and resumes from
`last.ckpt` when started again (a killed run, a retried task), and writes `result.json` when done,
so a finished fit is never repeated. One device trains in this process; several in workers.
"""

import json
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from pathlib import Path

from tasks.infra.errors import MlpipeError
from tasks.infra.files import file_sha256, read_json, write_atomic
from tasks.infra.runs import run_logger
from tasks.training.fit_worker import fit_in_worker
from tasks.training.trainer import FitJob, FitResult, run_trainer


def fit(
    job: FitJob,
    on_epoch: Callable[[int, int], None] | None = None,
    callbacks: list | None = None,
    mirror: str | None = None,
) -> FitResult:
    """Train on the devices the job asks for; several devices (or DDP) run in worker processes.

    on_epoch(epochs done, max epochs) reports progress, and `callbacks` (Lightning's) join the
    trainer: in this process only, so on one device. `mirror`: the folder's copy in the object
    storage, where another machine's fit of this candidate left its checkpoints or its result."""
    with _machines_lock(job, mirror), _folder_lock(job):
        return _fit_once(job, on_epoch, callbacks, mirror)


def _fit_once(job: FitJob, on_epoch, callbacks: list | None, mirror: str | None) -> FitResult:
    if mirror is not None:
        from tasks.training.mirroring import MirrorCheckpoints, pull_progress

        pull_progress(mirror, job.out_dir)
        callbacks = [*(callbacks or []), MirrorCheckpoints(job.out_dir, mirror)]
    done = _finished(job.out_dir)
    if done is not None:
        return done  # this very fit finished before
    if job.config.devices > 1 or job.config.strategy != "auto":
        result = fit_in_worker(job)  # its checkpoints reach the mirror when it ends, not each epoch
    else:
        result, _ = run_trainer(job, on_epoch=on_epoch, callbacks=callbacks)
        write_atomic(job.out_dir / "result.json", json.dumps(result.__dict__))
    if mirror is not None:
        from tasks.infra.objects import push
        from tasks.training.mirroring import FILES

        push(job.out_dir, mirror, FILES)
    return result


@contextmanager
def _folder_lock(job: FitJob):
    """Two identical runs at once on this machine share the folder: the second waits, then finds
    the first's result."""
    from filelock import FileLock, Timeout

    job.out_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(job.out_dir.with_name(f".{job.out_dir.name}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        family, folder, wait = job.config.family, job.out_dir, twin_wait_seconds()
        run_logger("mlpipe.training").warning("waiting for another run training %s in %s", family, folder)
        try:
            lock.acquire(timeout=wait)
        except Timeout:
            raise MlpipeError(
                f"another run has trained {family} in {folder} for more than {wait / 60:g} min "
                "(params.yaml's train.timeout_minutes and the time to move checkpoints): stop it, or run again later"
            ) from None
    try:
        yield
    finally:
        lock.release()


def _machines_lock(job: FitJob, mirror: str | None):
    """Two identical runs at once on two machines share the mirror: with a Prefect server, the
    second waits on a concurrency limit of the folder's, then reads the first's result from the
    mirror. (One limit per candidate folder stays on the server, one row each.)"""
    from tasks.infra.prefect_lock import prefect_lock, shared_prefect_api

    if mirror is None or not shared_prefect_api():
        return nullcontext()
    from tasks.infra.fingerprints import digest

    what = f"another machine training {job.config.family} ({mirror})"
    # A lost machine's slot frees within a minute; a failed renewal must not stop a long fit. No
    # twin trains longer than a candidate may (train.timeout_minutes): the wait ends there, said.
    limit = f"mlpipe-training-{digest(mirror)[:16]}"
    return prefect_lock(limit, twin_wait_seconds(), what, lease_seconds=60, strict=False)


TWIN_MARGIN_SECONDS = 600  # beyond the twin's training: pulling and pushing its checkpoints


def twin_wait_seconds() -> float:
    """How long a fit waits for an identical one to finish: as long as a candidate may train, and
    the time to move its checkpoints."""
    from tasks.infra.params import load_params
    from tasks.infra.settings import get_settings

    return 60 * load_params(get_settings()).train.timeout_minutes + TWIN_MARGIN_SECONDS


def _finished(out_dir: Path) -> FitResult | None:
    """The result of a fit that finished in out_dir; None for one cut short (no result, or a
    result.json that a kill left unreadable: trained again, from last.ckpt). A best.ckpt that is
    not the one its result names (another machine's, a tampered copy) is no result: the folder's
    checkpoints are set aside and the candidate trains again from the start."""
    recorded, best = read_json(out_dir / "result.json"), out_dir / "best.ckpt"
    if not isinstance(recorded, dict) or not best.exists():
        return None
    try:
        # The kept weights are best.ckpt of this folder, wherever the fit that wrote it ran.
        result = FitResult(**recorded | {"best_model_path": str(best)})
    except TypeError:  # written by another version of FitResult
        return None
    if result.best_sha256 != file_sha256(best):
        for name in ("result.json", "best.ckpt", "last.ckpt"):
            (out_dir / name).unlink(missing_ok=True)
        what = "%s is not the checkpoint its result.json names (sha256): trained again"
        run_logger("mlpipe.training").warning(what, best)
        return None
    return result
