"""`mlpipe up` and `mlpipe serve`: the servers and the deployments, until Ctrl-C."""

from typing import Annotated

import typer


def up(
    prefect_port: Annotated[int, typer.Option(help="Port of the Prefect server and UI")] = 4200,
    mlflow_port: Annotated[int, typer.Option(help="Port of the MLflow server and UI")] = 5000,
) -> None:
    """Start the Prefect server and the MLflow server on 127.0.0.1 until Ctrl-C."""
    import signal
    import time

    from tasks.infra.servers import HOST, prefect_database, start, stop
    from tasks.infra.settings import get_settings
    from tasks.registry.links import CLASSIC

    settings = get_settings()
    log_dir = settings.outputs_dir / "servers"
    # Ctrl-C stops the servers even where SIGINT came in ignored (a job started with `&` by a
    # script); `kill` stops them as cleanly.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
    processes = start(settings, prefect_port, mlflow_port, log_dir)
    try:  # from here on, a Ctrl-C at any moment (even while printing) stops the servers
        typer.echo(f"Prefect UI: http://{HOST}:{prefect_port}")
        typer.echo(f"MLflow UI:  http://{HOST}:{mlflow_port}/#/experiments?{CLASSIC}")
        typer.echo(f"  store: {settings.shown_tracking_uri}; artifacts: {settings.served_artifacts}")
        typer.echo(f"Prefect's database: {prefect_database(settings)}")
        typer.echo(f"Send runs to this Prefect server: export PREFECT_API_URL=http://{HOST}:{prefect_port}/api")
        typer.echo(f"Logs in {log_dir}. Ctrl-C stops both.", nl=True)
        while all(p.poll() is None for p in processes):
            time.sleep(1)
    except KeyboardInterrupt:
        typer.echo("Stopping the servers...")
    finally:
        stop(processes)
    exited = [p.args[1] for p in processes if p.returncode not in (0, -signal.SIGTERM, None)]
    typer.echo("Stopped." if not exited else f"Stopped; {', '.join(exited)} had exited on its own (see {log_dir}).")


def serve(
    datasets: Annotated[
        list[str] | None,
        typer.Option("--dataset", "-d", help="Schedule only these data sets [default: all in params.yaml's schedules]"),
    ] = None,
    timezone: Annotated[str, typer.Option(help="Time zone of the cron schedules")] = "UTC",
    limit: Annotated[int, typer.Option(min=1, help="Most flow runs at a time")] = 1,
) -> None:
    """Serve the deployments (scheduled retraining, UI-triggered runs, batch inference) until Ctrl-C."""
    import signal
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from prefect import serve as serve_deployments
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

    from flows.deployments import build_deployments, schedules_from
    from tasks.infra.errors import MlpipeError
    from tasks.infra.params import load_params
    from tasks.infra.servers import require_server
    from tasks.infra.settings import get_settings

    api_url = PREFECT_API_URL.value()
    if not api_url:
        raise MlpipeError(
            "mlpipe serve needs a Prefect server: start one with `mlpipe up`, then export PREFECT_API_URL it prints"
        )
    require_server(f"{api_url.rstrip('/')}/health", "the Prefect server (PREFECT_API_URL)")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise MlpipeError(f"unknown time zone {timezone!r}: use an IANA name such as UTC or Europe/Paris") from None
    project = load_params(get_settings())
    schedules = schedules_from(project, datasets)
    deployments = build_deployments(project, schedules, timezone)
    for name, cron in schedules.items():
        typer.echo(f"Scheduled: training_pipeline/train-{name} on `{cron}` ({timezone})")
    typer.echo(f"Deployments in the Prefect UI: {(PREFECT_UI_URL.value() or api_url).rstrip('/')}/deployments")
    # Ctrl-C is how serving ends, not an error: Prefect's runner stops its flow runs and returns.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    serve_deployments(*deployments, limit=limit, print_starting_message=False)
