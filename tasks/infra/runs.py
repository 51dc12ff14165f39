"""What a Prefect run shows people: its logger, its artifacts' keys, its page in the UI."""

import logging
import re
from datetime import UTC, datetime


def run_logger(fallback: str) -> logging.Logger:
    """The Prefect run's logger; the plain logger `fallback` outside a run (scripts, tests)."""
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(fallback)


def artifact_key(name: str) -> str:
    """Prefect artifact keys (and deployment names here) allow lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "dataset"


def run_title(dataset: str, families: list[str], started: datetime | None) -> str:
    """A pipeline run's name in Prefect and MLflow alike: `digits-cnn,rnn-2026-11-23T0300` (UTC)."""
    started = (started or datetime.now(UTC)).astimezone(UTC)
    return f"{dataset}-{','.join(families)}-{started:%Y-%m-%dT%H%M}"


def flow_run_url(flow_run_id: str) -> str:
    """The flow run's page in the Prefect UI, where one is configured: a server, not the temporary
    API of a command-line run, whose port is dead once the run ends."""
    import os

    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

    from tasks.infra.local_servers import TEMPORARY_API

    base = PREFECT_UI_URL.value()
    if not base or PREFECT_API_URL.value() == os.environ.get(TEMPORARY_API):
        return "none (temporary Prefect server)"
    return f"{base.rstrip('/')}/runs/flow-run/{flow_run_id}"


class _FailedTaskLines(logging.Filter):
    """Drops a task's error lines about an MlpipeError (`Task run failed with exception:
    ValidationFailed(...)` and its traceback, `Finished in state Failed(...)`): the flow run says
    that error once, with its traceback (fail_clearly). Other failures keep Prefect's lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        from tasks.infra.errors import MlpipeError

        if record.levelno < logging.ERROR:
            return True  # "Retry 1/3 will start ..." stays
        names, pending = set(), [MlpipeError]
        while pending:
            error = pending.pop()
            names.add(error.__name__)
            pending += error.__subclasses__()
        return not re.search(rf"\b({'|'.join(names)})[(:]", record.getMessage())


_FAILED_TASK_LINES = _FailedTaskLines()


def filter_failed_task_lines() -> None:
    """From now on in this process, a task failing with an MlpipeError logs no line of its own."""
    logging.getLogger("prefect.task_runs").addFilter(_FAILED_TASK_LINES)  # adding it again is a no-op


def fail_clearly(error: Exception):
    """The Failed state a flow returns for an error the user can fix: its message once, as the
    run's state and as one log line with the traceback, where Prefect shows it three times (the
    task's state, the flow's traceback, the flow's state). Calling the flow still raises it."""
    from prefect.states import Failed

    run_logger("mlpipe").error("%s", error, exc_info=error)
    return Failed(message=str(error), data=error)
