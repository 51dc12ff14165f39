"""`mlpipe up`, `serve`, `deploy` and `worker`: the servers, the deployments and who runs them."""

import urllib.request
from typing import Annotated

import typer

Scheduled = Annotated[
    list[str] | None,
    typer.Option("--dataset", "-d", help="Schedule only these data sets [default: all in params.yaml's schedules]"),
]
TimeZone = Annotated[str, typer.Option(help="Time zone of the cron schedules")]
POOL = "mlpipe"


def up(
    prefect_port: Annotated[
        int | None,
        typer.Option(help="Port of the Prefect server and UI, if it must start [default: 4200, else a free one]"),
    ] = None,
    mlflow_port: Annotated[int, typer.Option(help="Port of the MLflow server and UI")] = 5000,
) -> None:
    """Show the project's Prefect server (started if it is not running) and MLflow's UI on 127.0.0.1 until Ctrl-C."""
    import signal

    from tasks.infra.errors import MlpipeError
    from tasks.infra.local_servers import HOST, launch, mlflow_server, port_is_free, stop
    from tasks.infra.params import load_params
    from tasks.infra.project_server import ensure, running
    from tasks.infra.settings import get_settings

    settings = get_settings()
    idle_minutes = load_params(settings).server.idle_minutes
    log_dir = settings.outputs_dir / "servers"
    if not port_is_free(mlflow_port):
        raise MlpipeError(f"port {mlflow_port} on {HOST} is in use: pick another with --mlflow-port")
    # Ctrl-C stops MLflow even where SIGINT came in ignored (a job started with `&` by a script);
    # `kill` stops it as cleanly.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
    found = running(settings)
    prefect = ensure(settings, idle_minutes, None if found else prefect_port)
    if found and prefect_port not in (None, prefect.port):
        typer.echo(f"The project's Prefect server runs on port {prefect.port} already: --prefect-port is not used.")
    processes = launch([mlflow_server(settings, mlflow_port)], log_dir)
    try:  # from here on, a Ctrl-C at any moment (even while printing) stops MLflow
        _show_servers(settings, prefect, bool(found), mlflow_port, log_dir)
        _wait_while_both_run(settings, prefect, processes[0])
    except KeyboardInterrupt:
        typer.echo("Stopping MLflow's server...")
    finally:
        stop(processes)
    typer.echo(
        f"Stopped. The project's Prefect server goes on for this project's commands until {idle_minutes:g} "
        "minutes without a call, or `mlpipe down`."
        if running(settings) is not None
        else "Stopped."
    )


def _show_servers(settings, prefect, found: bool, mlflow_port: int, log_dir) -> None:
    """Where the UIs are, where the stores and logs are, and how to send runs from elsewhere."""
    from tasks.infra.api_auth import AUTH_FILE, AUTH_USER
    from tasks.infra.local_servers import HOST
    from tasks.registry.links import CLASSIC

    typer.echo(f"Prefect UI: {prefect.url}" + (" (the project's server, running already)" if found else ""))
    typer.echo(f"MLflow UI:  http://{HOST}:{mlflow_port}/#/experiments?{CLASSIC}")
    typer.echo(f"  store: {settings.shown_tracking_uri}; artifacts: {settings.served_artifacts}")
    typer.echo(f"Prefect's database: {prefect.database}")
    typer.echo(f"Send runs from elsewhere to this Prefect server: export PREFECT_API_URL={prefect.api_url}")
    password = settings.prefect_home / AUTH_FILE
    typer.echo(
        f"  its API takes calls with the password in {password} only: this project's commands send it; "
        f'elsewhere export PREFECT_API_AUTH_STRING="{AUTH_USER}:$(cat {password})" (the UI asks for it once)'
    )
    typer.echo(f"Logs in {log_dir} and {settings.prefect_home}. Ctrl-C stops MLflow; `mlpipe down` stops Prefect.")


def _wait_while_both_run(settings, prefect, mlflow) -> None:
    """Until MLflow's server or the project's Prefect server stops, calling the Prefect server
    once a minute: while this runs, it is in use."""
    import time

    from tasks.infra.project_server import running

    last_call = time.monotonic()
    while mlflow.poll() is None and running(settings) == prefect:
        time.sleep(1)
        if time.monotonic() - last_call > 60:  # while this runs, the Prefect server is in use
            last_call = time.monotonic()
            try:
                urllib.request.urlopen(f"{prefect.api_url}/health", timeout=10).close()
            except OSError:
                pass  # stopped meanwhile: the loop's condition sees it
    gone = "MLflow's server" if mlflow.poll() is not None else "The Prefect server (`mlpipe down`)"
    typer.echo(f"{gone} stopped.")


def down() -> None:
    """Stop the project's Prefect server (the next command that needs it starts it again)."""
    from tasks.infra.project_server import stop
    from tasks.infra.settings import get_settings

    server = stop(get_settings())
    stopped = f"Stopped the project's Prefect server ({server.url})." if server else None
    typer.echo(stopped or "No Prefect server runs for this project.")


def serve(
    datasets: Scheduled = None,
    timezone: TimeZone = "UTC",
    limit: Annotated[int, typer.Option(min=1, help="Most flow runs at a time")] = 1,
) -> None:
    """Serve the deployments (scheduled retraining, UI-triggered runs, batch inference) until Ctrl-C."""
    import signal

    from prefect import serve as serve_deployments
    from prefect.settings import PREFECT_UI_URL

    from tasks.infra.params import load_params
    from tasks.infra.settings import get_settings

    api_url, schedules, deployments = _deployments("mlpipe serve", datasets, timezone)
    retraining = load_params(get_settings()).retraining
    on = (
        f", and within {retraining.debounce_seconds} s of {' or '.join(retraining.events)}" if retraining.events else ""
    )
    for name, cron in schedules.items():
        typer.echo(f"Scheduled: training_pipeline/train-{name} on `{cron}` ({timezone}){on}")
    typer.echo(f"Deployments in the Prefect UI: {(PREFECT_UI_URL.value() or api_url).rstrip('/')}/deployments")
    # Ctrl-C is how serving ends, not an error: Prefect's runner stops its flow runs and returns.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    serve_deployments(*deployments, limit=limit, print_starting_message=False)


def deploy(
    pool: Annotated[str, typer.Option(help="The Prefect work pool (a process pool, made if missing)")] = POOL,
    datasets: Scheduled = None,
    timezone: TimeZone = "UTC",
) -> None:
    """Register the deployments of `mlpipe serve` with a work pool, for `mlpipe worker`s on any machine."""
    from prefect.client.orchestration import get_client

    from flows.work_pool import ensure_pool

    api_url, _, deployments = _deployments("mlpipe deploy", datasets, timezone)
    with get_client(sync_client=True) as client:
        typer.echo(ensure_pool(client, pool))
    # Module entrypoints and no pull step: each worker runs the flows of the mlpipe installed on its
    # machine, in its own project folder (a pull step's folder would tie them to this machine's).
    for deployment in deployments:
        deployment.apply(work_pool_name=pool)
        typer.echo(f"Deployed {deployment.flow_name}/{deployment.name} to {pool!r}")
    typer.echo(f"Start a worker on each machine: mlpipe worker --pool {pool}; runs: {api_url.rstrip('/')}/deployments")


def worker(
    pool: Annotated[str, typer.Option(help="The Prefect work pool to take flow runs from")] = POOL,
    limit: Annotated[int, typer.Option(min=1, help="Most flow runs at a time on this machine")] = 1,
) -> None:
    """A Prefect process worker for this project folder: it runs the pool's flow runs here until Ctrl-C."""
    import asyncio
    import os

    from prefect.exceptions import ObjectNotFound

    from flows.work_pool import BASE_JOB_TEMPLATE, FixedProcessWorker
    from tasks.infra.errors import MlpipeError
    from tasks.infra.settings import get_settings

    _require_prefect_server("mlpipe worker")
    settings = get_settings()
    # Prefect starts each flow run in a temporary folder: the project is named by MLPIPE_ROOT.
    os.environ["MLPIPE_ROOT"] = str(settings.root)

    async def work() -> None:
        from prefect.client.orchestration import get_client

        async with get_client() as client:
            try:
                template = (await client.read_work_pool(pool)).base_job_template
            except ObjectNotFound:
                raise MlpipeError(f"no work pool {pool!r}: run mlpipe deploy --pool {pool} first") from None
        if template != BASE_JOB_TEMPLATE:  # runs would still start only as mlpipe's worker says
            raise MlpipeError(
                f"the work pool {pool!r} was not made by `mlpipe deploy` or was edited since: "
                f"run mlpipe deploy --pool {pool}"
            )
        typer.echo(f"Worker for {settings.root} on pool {pool!r} ({limit} flow run(s) at a time). Ctrl-C stops it.")
        runner = FixedProcessWorker(work_pool_name=pool, limit=limit, create_pool_if_not_found=False)
        await runner.start()

    try:
        asyncio.run(work())
    except KeyboardInterrupt:
        typer.echo("Worker stopped.")


def _require_prefect_server(command: str) -> str:
    """The Prefect API that `command` works with, answering: PREFECT_API_URL's, else the project's server."""
    from prefect.settings import PREFECT_API_URL

    from flows.cli.runtime import project_server_ready
    from tasks.infra.errors import MlpipeError
    from tasks.infra.local_servers import require_server
    from tasks.infra.project_server import temporary_servers

    if not PREFECT_API_URL.value():
        if temporary_servers():
            raise MlpipeError(
                f"{command} needs a Prefect server, and MLPIPE_PREFECT_SERVER=temporary starts none: "
                "start one with `mlpipe up`, then export PREFECT_API_URL it prints"
            )
        ready = project_server_ready()
        if ready is not None:
            ready()
    api_url = PREFECT_API_URL.value()
    require_server(f"{api_url.rstrip('/')}/health", "the Prefect server (PREFECT_API_URL)")
    return api_url


def _deployments(command: str, datasets: list[str] | None, timezone: str) -> tuple[str, dict[str, str], list]:
    """(the Prefect API's URL, data set -> cron, the deployments) for `serve` and `deploy`."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from flows.deployments import build_deployments, schedules_from
    from tasks.infra.errors import MlpipeError
    from tasks.infra.params import load_params
    from tasks.infra.settings import get_settings

    api_url = _require_prefect_server(command)
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise MlpipeError(f"unknown time zone {timezone!r}: use an IANA name such as UTC or Europe/Paris") from None
    project = load_params(get_settings())
    schedules = schedules_from(project, datasets)
    return api_url, schedules, build_deployments(project, schedules, timezone)
