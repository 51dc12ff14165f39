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

    from tasks.infra.servers import TEMPORARY_API

    base = PREFECT_UI_URL.value()
    if not base or PREFECT_API_URL.value() == os.environ.get(TEMPORARY_API):
        return "none (temporary Prefect server)"
    return f"{base.rstrip('/')}/runs/flow-run/{flow_run_id}"
