"""The promotion lock: one champion decision at a time per registered model, on every machine that
shares the tracking store.

Two runs that finish together must not both compare against the same old champion and both move
the alias. The lock lives where the shared state lives:

- a PostgreSQL tracking store: a PostgreSQL advisory lock in that database (released by the
  server if the holder dies);
- otherwise, with a Prefect server configured (PREFECT_API_URL, not mlpipe's temporary API): a
  Prefect global concurrency limit of one slot, `mlpipe-promotion-<name>`;
- otherwise (the embedded SQLite store, one machine): a file lock beside the store.
"""

import hashlib
import logging
from contextlib import contextmanager
from pathlib import Path

from tasks.infra.errors import MlpipeError
from tasks.infra.prefect_lock import prefect_lock, shared_prefect_api
from tasks.infra.settings import Settings

TIMEOUT_SECONDS = 900  # a decision takes seconds (at most two fresh-process predictions of 300 s); longer: stuck

logger = logging.getLogger(__name__)


def lock_kind(settings: Settings) -> str:
    """postgresql | prefect | file: which lock `promotion_lock` takes for this store."""
    if settings.tracking_uri.startswith("postgresql"):
        return "postgresql"
    return "prefect" if shared_prefect_api() else "file"


@contextmanager
def promotion_lock(settings: Settings, name: str, timeout: float = TIMEOUT_SECONDS):
    kind = lock_kind(settings)
    if kind == "postgresql":
        with _advisory_lock(settings.tracking_uri, f"mlpipe.promotion.{name}", timeout):
            yield
    elif kind == "prefect":
        with prefect_lock(f"mlpipe-promotion-{name}", timeout, f"the promotion lock of {name}"):
            yield
    else:
        if settings.tracking_uri.startswith(("http://", "https://")):
            logger.warning(
                "promotion of %s is locked on this machine only: a tracking server without a shared Prefect "
                "server (PREFECT_API_URL) offers no lock that other machines see",
                name,
            )
        from filelock import FileLock, Timeout

        lock = FileLock(_lock_path(settings, name))
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            raise MlpipeError(f"the promotion lock of {name} was held for more than {timeout:.0f} s") from None
        try:
            yield
        finally:
            lock.release()


def _lock_path(settings: Settings, name: str) -> Path:
    """Beside the SQLite database, where every project that shares that store finds it."""
    database = settings.sqlite_database
    folder = database.parent if database is not None else settings.mlflow_dir
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f".{name}.promotion.lock"


@contextmanager
def _advisory_lock(uri: str, key: str, timeout: float):
    import sqlalchemy

    # A signed 64-bit key from the name: pg_advisory_lock's key space.
    lock_id = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
    # Autocommit: a session idle in an open transaction may be ended by the server, and the lock with it.
    engine = sqlalchemy.create_engine(uri, poolclass=sqlalchemy.pool.NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text(f"SET lock_timeout = '{int(timeout * 1000)}ms'"))
            try:
                connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:id)"), {"id": lock_id})
            except sqlalchemy.exc.OperationalError as error:
                if "lock timeout" in str(error):
                    raise MlpipeError(f"the promotion lock {key} was held for more than {timeout:.0f} s") from None
                raise
            try:
                yield
            finally:
                try:
                    connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:id)"), {"id": lock_id})
                except sqlalchemy.exc.SQLAlchemyError as error:  # the session ends below, and its lock with it
                    logger.warning("could not release %s: %s", key, str(error).splitlines()[0])
    finally:
        engine.dispose()
