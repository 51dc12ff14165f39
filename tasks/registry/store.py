"""The MLflow store: where it is, whether it answers, and what the current champion was trained on."""

import os
import warnings
from pathlib import Path

from tasks.infra.settings import Settings
from tasks.registry.links import EXPERIMENT_KIND


def connect(settings: Settings, experiment: str, create: bool = True) -> str | None:
    """Point MLflow at the store and return the experiment's id (None if absent and not created)."""
    import logging

    import mlflow

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)  # schema migration chatter
    # The served model's inputs are read by column name; these hints do not apply to it.
    warnings.filterwarnings("ignore", ".*Inferred schema contains integer column.*")
    warnings.filterwarnings("ignore", ".*Add type hints to the `predict` method.*")
    uri, database = settings.tracking_uri, settings.sqlite_database
    if database is not None:
        if not create and not database.exists():
            return None  # reading must not create an empty store
        database.parent.mkdir(parents=True, exist_ok=True)
    exported = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    # MLflow also exports the URI to the environment, where Settings reads the user's choice: put
    # the user's value back, or the next project in this process would log into this one's store.
    if exported is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = exported
    from mlflow.exceptions import MlflowException

    with _first_use_lock(database):
        found = mlflow.get_experiment_by_name(experiment)
        if found is not None:
            return found.experiment_id
        if not create:
            return None
        try:
            return mlflow.create_experiment(
                experiment,
                artifact_location=f"{where}/{experiment}" if (where := settings.artifact_location) else None,
                tags=dict([EXPERIMENT_KIND]),  # models, not GenAI: the UI opens its classic pages
            )
        except MlflowException:
            found = mlflow.get_experiment_by_name(experiment)  # another run created it a moment ago
            if found is None:
                raise
            return found.experiment_id


def connect_existing(settings: Settings, name: str) -> str:
    """Point MLflow at the store and return the data set's experiment id; one line when it has none."""
    from tasks.infra.errors import MlpipeError

    experiment_id = connect(settings, name, create=False)
    if experiment_id is None:
        raise MlpipeError(f"no runs for data set {name!r} in {settings.shown_tracking_uri}: run `mlpipe run` first")
    return experiment_id


def _first_use_lock(database: Path | None):
    """MLflow creates a SQLite store's tables, and mlpipe an experiment, on first use: two runs
    starting at once on a new store would both try ("table ... already exists"). On SQLite the
    first does it while the other waits; a database server serialises that itself."""
    from contextlib import nullcontext

    from filelock import FileLock

    return FileLock(f"{database}.lock") if database is not None else nullcontext()


def check_tracking_store(settings: Settings) -> None:
    """Fail at once, in one line, when the MLflow server is unreachable: before any training."""
    from tasks.infra.local_servers import require_server

    uri = settings.tracking_uri
    if uri.startswith(("http://", "https://")):  # a database store reports its errors on first use
        user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
        credentials = (user, password or "") if user else None
        require_server(f"{uri.rstrip('/')}/health", "the MLflow tracking server (MLFLOW_TRACKING_URI)", credentials)


def mlflow_ui_url(settings: Settings) -> str:
    """Where people browse the store: the tracking server itself, else the UI `mlpipe up` serves."""
    uri = settings.tracking_uri
    if uri.startswith(("http://", "https://")):
        return uri.rstrip("/")  # without user info (Settings.tracking_uri): a shared link holds no password
    return os.environ.get("MLPIPE_MLFLOW_UI_URL", "http://127.0.0.1:5000").rstrip("/")


def champion_profile(dataset: str, settings: Settings) -> dict | None:
    """The data profile stored with the current champion, or None when there is none yet."""
    import mlflow
    from mlflow.exceptions import MlflowException

    if connect(settings, dataset, create=False) is None:
        return None
    try:
        champion = mlflow.MlflowClient().get_model_version_by_alias(dataset, "champion")
    except MlflowException:
        return None  # no champion
    return version_profile(champion.run_id)


def version_profile(run_id: str) -> dict | None:
    """The data profile kept in a registered version's run; None for one registered before profiles were."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        return mlflow.artifacts.load_dict(f"runs:/{run_id}/data/profile.json")
    except MlflowException:
        return None
