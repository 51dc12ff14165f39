"""Which failures a task retries: the ones that may pass on their own, never bad input."""

from tasks.infra.errors import MlpipeError


class TransientError(MlpipeError):
    """A failure worth another attempt: a lock held by another run, a worker killed mid-fit."""


def is_transient(error: BaseException) -> bool:
    if isinstance(error, TransientError):
        return True
    if isinstance(error, MlpipeError):
        return False  # bad data, bad parameters: the same again would fail the same way
    return transient_failure([kind.__name__ for kind in type(error).__mro__], str(error))


def transient_failure(kinds: list[str], message: str) -> bool:
    """The rule on an error's class names (its own and its bases') and message, so that a process that
    cannot import mlpipe (registry/serving_worker.py) sends them and its parent applies the same rule."""
    if "TaskRunTimeoutError" in kinds:
        return False  # the task used up its time budget; another try would too
    if {"ConnectionError", "TimeoutError"} & set(kinds):
        return True  # a server that is restarting or briefly unreachable (requests' ConnectionError too)
    if "OperationalError" in kinds:  # SQLite's lock, bare or wrapped by SQLAlchemy
        return "locked" in message
    # MLflow wraps its HTTP client's failures, and its SQL store SQLite's lock.
    wrapped = ("Max retries exceeded", "Connection", "database is locked")
    return "MlflowException" in kinds and any(part in message for part in wrapped)


def retry_if_transient(task, task_run, state) -> bool:
    """Prefect's retry_condition_fn: retry a task only after a transient failure."""
    error = state.data if isinstance(state.data, BaseException) else None
    return error is not None and is_transient(error)


def transient_retries(retries: int) -> dict:
    """Options for Prefect's @task: up to `retries` more attempts with exponential backoff (2 s,
    4 s, ...), after transient failures only."""
    from prefect.tasks import exponential_backoff  # here: DDP workers import this module too

    return {"retries": retries, "retry_delay_seconds": exponential_backoff(2), "retry_condition_fn": retry_if_transient}
