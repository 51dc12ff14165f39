"""Which failures a task retries: the ones that may pass on their own, never bad input."""

import sqlite3

from tasks.infra.errors import MlpipeError


class TransientError(MlpipeError):
    """A failure worth another attempt: a lock held by another run, a worker killed mid-fit."""


def is_transient(error: BaseException) -> bool:
    if isinstance(error, TransientError):
        return True
    if isinstance(error, MlpipeError):
        return False  # bad data, bad parameters: the same again would fail the same way
    if type(error).__name__ == "TaskRunTimeoutError":
        return False  # the task used up its time budget; another try would too
    if isinstance(error, ConnectionError | TimeoutError):
        return True  # a server that is restarting or briefly unreachable
    if isinstance(error, sqlite3.OperationalError) and "locked" in str(error):
        return True
    name = type(error).__name__
    message = str(error)
    # MLflow wraps its HTTP client's failures; SQLAlchemy wraps SQLite's lock.
    return (name == "MlflowException" and ("Max retries exceeded" in message or "Connection" in message)) or (
        name == "OperationalError" and "database is locked" in message
    )


def retry_if_transient(task, task_run, state) -> bool:
    """Prefect's retry_condition_fn: retry a task only after a transient failure."""
    error = state.data if isinstance(state.data, BaseException) else None
    return error is not None and is_transient(error)


def transient_retries(retries: int) -> dict:
    """Options for Prefect's @task: up to `retries` more attempts with exponential backoff (2 s,
    4 s, ...), after transient failures only."""
    from prefect.tasks import exponential_backoff  # here: DDP workers import this module too

    return {"retries": retries, "retry_delay_seconds": exponential_backoff(2), "retry_condition_fn": retry_if_transient}
