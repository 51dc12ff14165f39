"""Where Optuna keeps its studies: beside the tracking store, so that every process and machine
that reaches the store joins the same study, and a killed study resumes where it stopped.

The embedded store gets `mlflow/optuna.db` beside `mlflow/mlflow.db`. A PostgreSQL tracking
store gets a database of its own on the same server (`<name>_optuna`: Optuna's tables would
clash with MLflow's, both keep an `alembic_version`), created on first use. A tracking server
reached over HTTP says nothing of its database: MLPIPE_OPTUNA_STORAGE names one."""

import os

from tasks.infra.errors import MlpipeError
from tasks.infra.settings import Settings

STORAGE_VARIABLE = "MLPIPE_OPTUNA_STORAGE"


def storage_url(settings: Settings) -> str:
    if url := os.environ.get(STORAGE_VARIABLE):
        return url
    if settings.sqlite_database is not None:
        return f"sqlite:///{settings.sqlite_database.with_name('optuna.db')}"
    uri = settings.tracking_uri
    if uri.startswith("postgresql"):
        from sqlalchemy.engine import make_url

        tracking = make_url(uri)
        return tracking.set(database=f"{tracking.database}_optuna").render_as_string(hide_password=False)
    raise MlpipeError(
        f"the tracking store {settings.shown_tracking_uri} is a server: set {STORAGE_VARIABLE} to a "
        "database URL for the tuning studies (postgresql://... on the same server, or sqlite:///...)"
    )


def open_storage(settings: Settings):
    """Optuna's RDBStorage on storage_url, with heartbeats: a trial whose process was killed is
    failed and tried again by the next worker (RetryHeartbeatStaleTrialCallback)."""
    import warnings

    from optuna.exceptions import ExperimentalWarning
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    warnings.filterwarnings("ignore", category=ExperimentalWarning)  # heartbeats are, since Optuna 2.8
    url = storage_url(settings)
    if url.startswith("sqlite:///"):
        from pathlib import Path

        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = {"connect_args": {"timeout": 60}}  # several workers write to one file
    else:
        _create_database(url)
        engine = {"pool_pre_ping": True}
    return RDBStorage(
        url,
        engine_kwargs=engine,
        heartbeat_interval=30,
        grace_period=120,
        heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
    )


def _create_database(url: str) -> None:
    """The tuning database on the tracking store's PostgreSQL server, unless it exists."""
    import sqlalchemy
    from sqlalchemy.engine import make_url

    target = make_url(url)
    if not target.drivername.startswith("postgresql"):
        return
    server = sqlalchemy.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as connection:
            found = connection.execute(
                sqlalchemy.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
            ).first()
            if found is None:
                connection.execute(sqlalchemy.text(f'CREATE DATABASE "{target.database}"'))
    except sqlalchemy.exc.OperationalError as error:
        raise MlpipeError(f"cannot reach the tuning database's server: {str(error).splitlines()[0]}") from None
    except sqlalchemy.exc.ProgrammingError:
        pass  # another worker created it a moment ago, or no right to create: RDBStorage will say
    finally:
        server.dispose()
