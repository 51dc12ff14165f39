"""mlpipe's Prefect events: what `mlpipe serve`'s deployment triggers start training runs on.

Each event is about one data set, the resource `mlpipe.dataset.<name>`, so a deployment's trigger
matches its own data set's events only. Events are sent at once, on their own connection, and a
send that fails says so: Prefect's background sender would drop them with a log line at exit.
"""

from tasks.infra.errors import MlpipeError, redact


def dataset_resource_id(dataset: str) -> str:
    return f"mlpipe.dataset.{dataset}"


def emit(event: str, dataset: str, payload: dict) -> str | None:
    """Send `event` about `dataset` to the Prefect server of PREFECT_API_URL: its URL (any
    password masked: it is printed and logged), or None when no server is configured."""
    from prefect import runtime
    from prefect.events import Event
    from prefect.events.clients import get_events_client
    from prefect.settings import PREFECT_API_URL
    from prefect.utilities.asyncutils import run_coro_as_sync

    api_url = PREFECT_API_URL.value()
    if not api_url:
        return None
    api_url = redact(api_url)
    related = []
    if flow_run_id := runtime.flow_run.id:  # the run that found it, linked in the UI's event feed
        related.append({"prefect.resource.id": f"prefect.flow-run.{flow_run_id}", "prefect.resource.role": "flow-run"})
    resource = {"prefect.resource.id": dataset_resource_id(dataset), "prefect.resource.name": dataset}

    async def send() -> None:
        async with get_events_client(reconnection_attempts=2, checkpoint_every=1) as client:
            await client.emit(Event(event=event, resource=resource, related=related, payload=payload))

    try:
        run_coro_as_sync(send())
    except Exception as error:  # websockets' and OS errors alike: the server did not take it
        reason = redact(f"{type(error).__name__}: {error}")  # an error may quote the URL it called
        raise MlpipeError(f"the Prefect server at {api_url} did not take event {event}: {reason}") from None
    return api_url
