"""What a Prefect run shows people: its logger, its artifacts' keys, its page in the UI."""

import logging
import re


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


def flow_run_url(flow_run_id: str) -> str:
    """The flow run's page in the Prefect UI, where one is configured (a server; not the temporary one)."""
    from prefect.settings import PREFECT_UI_URL

    base = PREFECT_UI_URL.value()
    return f"{base.rstrip('/')}/runs/flow-run/{flow_run_id}" if base else "none (temporary Prefect server)"
