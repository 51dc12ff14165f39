"""Prefect's private parts that mlpipe relies on, in one place, each with the reason no public API
does the job. pyproject.toml pins Prefect's minor version, and tests/test_private_apis.py fails
loudly when an upgrade moves one of them. Prefect is imported where it is used (tasks/ modules
import no Prefect at import time)."""

# prefect.engine runs the flow this names instead of reading the deployment's entrypoint from the API.
FLOW_ENTRYPOINT = "PREFECT__FLOW_ENTRYPOINT"
# PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE is a public setting, but its value names a module of
# Prefect's server: the leases on disk instead of in memory.
LEASE_STORAGE_ON_DISK = "prefect.server.concurrency.lease_storage.filesystem"


def deployment_schema(deployment):
    """A RunnerDeployment's parameter schema (its UI form). No public attribute holds it; Prefect's
    own `freeze()` edits this one the same way."""
    return deployment._parameter_openapi_schema


def set_deployment_schema(deployment, schema) -> None:
    deployment._parameter_openapi_schema = schema


def fix_command(configuration, command: str) -> None:
    """The process worker runs `command`: ProcessJobConfiguration replaces a command it was not told
    is configured, and only its private flag tells it."""
    configuration.command = command
    configuration._command_configured = True


def worker_environment(configuration, flow_run) -> dict[str, str]:
    """What a Prefect worker gives every flow run's process (the API's URL and key, the run's id).
    The public prepare_for_flow_run merges it with the job's variables, which mlpipe's worker must
    not take from the API; these two private helpers give it alone."""
    return {**configuration._base_environment(), **configuration._base_flow_run_environment(flow_run)}


def drain_prefect_workers(timeout: float = 10) -> None:
    """Send what Prefect's log and event workers still hold, while the API is up to take it.
    `drain_all` is a method of their private base class (prefect._internal's QueueService); Prefect's
    own exit hook calls it."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        worker.drain_all(timeout=timeout)


def resolve_hook_flows_with(loader) -> None:
    """Prefect's process worker finds the flow of a run's crash and cancellation hooks with the
    module-level `load_flow_from_flow_run`, from the deployment the API describes; no setting
    replaces it, so mlpipe's worker (flows/work_pool.py) puts its own in its place."""
    import prefect.workers.process

    prefect.workers.process.load_flow_from_flow_run = loader
