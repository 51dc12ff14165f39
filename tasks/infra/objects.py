"""The team's object storage (MLPIPE_STORAGE_URL: s3://bucket/prefix, or any fsspec URL: gs://, az://,
file://): what another machine's run needs, where any machine reaches it. Prefect's cached task
results and the candidates' checkpoints live there; the run's own disk is scratch.

The credentials and the endpoint are the storage's own settings (for S3: AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL for an S3-compatible server, ~/.aws/config), never mlpipe's.
"""

from pathlib import Path

from tasks.infra.errors import MlpipeError


def filesystem(url: str):
    """(fsspec filesystem, path inside it) of a URL."""
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as error:  # no fsspec backend for the scheme (s3fs for s3://)
        raise MlpipeError(f"object storage {url}: {error}") from None


def exists(url: str) -> bool:
    fs, path = filesystem(url)
    try:
        return fs.exists(path)
    except OSError as error:
        raise MlpipeError(f"object storage {url} cannot be read: {_short(error)}") from None


def pull(url: str, folder: Path, names: tuple[str, ...]) -> list[str]:
    """The files of `names` that `url` holds, copied into `folder` over what is there: another
    machine's progress. Returns the names copied."""
    fs, root = filesystem(url)
    copied = []
    for name in names:
        remote = f"{root}/{name}"
        try:
            if not fs.exists(remote):
                continue
            folder.mkdir(parents=True, exist_ok=True)
            partial = folder / f".{name}.pulling"
            fs.get_file(remote, str(partial))
            partial.replace(folder / name)  # whole or not at all
            copied.append(name)
        except OSError as error:
            raise MlpipeError(f"object storage {url}/{name} cannot be read: {_short(error)}") from None
    return copied


def push(folder: Path, url: str, names: tuple[str, ...]) -> None:
    """The files of `names` that `folder` holds, copied to `url`. An object store writes an object
    whole: a reader sees the old one or the new one."""
    fs, root = filesystem(url)
    for name in names:
        local = folder / name
        if local.exists():
            try:
                fs.put_file(str(local), f"{root}/{name}")
            except OSError as error:
                raise MlpipeError(f"object storage {url}/{name} cannot be written: {_short(error)}") from None


def result_storage(settings):
    """Where Prefect keeps cached task results: cache/ in the object storage, where every machine's
    rerun finds them, else the project's outputs/cache. Either is an fsspec folder whose files are
    signed (tasks/infra/signed_results.py: a cached result is a pickle), a block saved to the
    Prefect API as Prefect requires of result storage, under a name of its URL."""
    import hashlib

    from tasks.infra.result_blocks import SignedLocalResults, SignedRemoteResults
    from tasks.infra.signed_results import cache_secret

    cache_secret()  # a secret that cannot be read or made stops the run here, in one line
    if settings.storage_url is None:
        url, block = str(settings.cache_dir), SignedLocalResults(basepath=str(settings.cache_dir))
    else:
        url = f"{settings.storage_url}/cache"
        block = SignedRemoteResults(basepath=url)
    block.save(f"mlpipe-results-{hashlib.sha256(url.encode()).hexdigest()[:12]}", overwrite=True)
    return block


def _short(error: Exception) -> str:
    return " ".join(str(error).split())[:200]
