"""DVC: track a data folder and return its content hash (the data version)."""

from pathlib import Path

from tasks.errors import MlpipeError


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
    with repo:
        (stage,) = repo.add(str(target))
    # A folder's hash ends in ".dir"; the bare digest names the version.
    return stage.outs[0].hash_info.value.removesuffix(".dir")
