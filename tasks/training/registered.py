"""Reading registered versions to start from (a pretrained encoder, --init-from's network), with
the tracking store's own URI: training reads the registry, never writes it."""

from pathlib import Path
from tempfile import TemporaryDirectory

from tasks.infra.errors import MlpipeError
from tasks.infra.settings import Settings


def registry_client(settings: Settings):
    import mlflow

    database = settings.sqlite_database
    if database is not None and not database.exists():  # reading must not create an empty store
        raise MlpipeError(f"no registered models in {settings.shown_tracking_uri}")
    return mlflow.MlflowClient(settings.tracking_uri, settings.tracking_uri)


def version_of(settings: Settings, name: str, version: str | None = None, alias: str | None = None):
    """The ModelVersion a version number or an alias names; None when there is none."""
    from mlflow.exceptions import MlflowException

    client = registry_client(settings)
    try:
        return client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, version)
    except MlflowException:
        return None


def download_version(settings: Settings, name: str, version: str, kind: str) -> Path:
    """The version's files in outputs/<kind>/, downloaded once: named by its run, since a version
    number means another model in another store."""
    import mlflow

    client = registry_client(settings)
    run_id = client.get_model_version(name, version).run_id
    target = settings.outputs_dir / kind / f"{name}-v{version}-{run_id[:12]}"
    if target.exists():
        return target
    uri = client.get_model_version_download_uri(name, version)
    target.parent.mkdir(parents=True, exist_ok=True)
    with TemporaryDirectory(dir=target.parent) as tmp:
        folder = mlflow.artifacts.download_artifacts(uri, dst_path=tmp, tracking_uri=settings.tracking_uri)
        try:
            Path(folder).rename(target)  # whole or not at all: a second run at once finds it done
        except OSError:
            pass
    return target
