"""`mlpipe`: the command line. Heavy libraries load inside the commands that need them."""

import json
import os
import signal
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from flows.cli_data import data_app
from flows.cli_servers import serve, up

app = typer.Typer(
    name="mlpipe",
    help="Validate, train, evaluate and register models with Prefect, Great Expectations, Lightning, MLflow and DVC.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

DatasetOption = Annotated[
    str, typer.Option("--dataset", "-d", help="Data set: a name (built in: digits) or the path of a spec .yaml")
]


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


@app.callback()
def main_options(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors")] = False,
) -> None:
    ctx.obj = {"debug": debug}


@app.command()
def run(
    ctx: typer.Context,
    dataset: DatasetOption = "digits",
    models: Annotated[
        str,
        typer.Option(
            help="Networks to train, comma-separated: cnn, rnn, transformer (the baseline joins; params.yaml selection)"
        ),
    ] = "cnn,rnn,transformer",
    max_epochs: Annotated[int | None, typer.Option(help="Most epochs per candidate [default: params.yaml]")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size [default: params.yaml]")] = None,
    learning_rate: Annotated[float | None, typer.Option(help="Peak learning rate [default: params.yaml]")] = None,
    seed: Annotated[int | None, typer.Option(help="Training seed [default: params.yaml]")] = None,
    devices: Annotated[int, typer.Option(help="Devices per candidate: GPUs, or processes on the CPU")] = 1,
    strategy: Annotated[str, typer.Option(help="auto or ddp (distributed data parallel)")] = "auto",
    warn_only: Annotated[
        bool, typer.Option("--warn-only", help="Train even when validation fails (the run is tagged so)")
    ] = False,
    out: Annotated[
        Path | None, typer.Option(help="Also write the registered model, metrics.json and plots here (for DVC)")
    ] = None,
) -> None:
    """Run the training pipeline: validate, train candidates, evaluate, register the best."""
    from flows.parameters import PipelineParams

    params = _parse(
        PipelineParams,
        dataset=dataset,
        models=[m.strip() for m in models.split(",") if m.strip()],
        max_epochs=max_epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
        devices=devices,
        strategy=strategy,
        warn_only=warn_only,
    )
    from tasks.servers import start_temporary_prefect_api

    prefect_ready = start_temporary_prefect_api()
    from flows.training import training_pipeline

    _import_stage_libraries()  # meanwhile, a temporary Prefect API boots in its own process
    if prefect_ready is not None:
        prefect_ready()
    if not ctx.obj["debug"]:
        _hide_tracebacks_on_console()
    registration = training_pipeline(params)
    _print_leaderboard(registration.dataset, limit=10)
    for note in registration.notes:
        typer.echo(note)
    typer.echo(
        f"\nRegistered model '{registration.dataset}' version {registration.version} "
        f"({registration.best_family}); {registration.reason}."
    )
    if out is not None:
        from tasks.export import export_version
        from tasks.settings import get_settings

        export_version(registration.dataset, registration.version, out, get_settings())
        typer.echo(f"Model, metrics and plots: {out}")
    _print_where_to_look()


@app.command()
def reproduce(
    version: Annotated[int, typer.Option("--version", help="The registered version to retrain")],
    dataset: DatasetOption = "digits",
    tolerance: Annotated[
        float, typer.Option(help="Largest metric difference that still counts as reproduced (0.005: 0.5 points)")
    ] = 0.005,
) -> None:
    """Retrain a registered version from its recorded data version and settings; compare the metrics."""
    from tasks.errors import MlpipeError
    from tasks.reproduction import reproduce as retrain

    name, settings = _registry(dataset)
    result = retrain(name, str(version), settings)
    for warning in result.warnings:
        typer.echo(f"warning: {warning}")
    typer.echo(f"{name} v{version} retrained from data {result.data_hash[:12]} in {result.out_dir}")
    typer.echo(f"{'metric':<16}{'registered':>12}{'reproduced':>12}{'difference':>12}")
    for metric, registered, reproduced in result.rows:
        typer.echo(f"{metric:<16}{registered:>12.4f}{reproduced:>12.4f}{reproduced - registered:>+12.4f}")
    worst = max(abs(b - a) for _, a, b in result.rows)
    if worst > tolerance:
        raise MlpipeError(f"{name} v{version} did not reproduce: a metric moved {worst:.4f}, more than {tolerance}")
    typer.echo(f"Reproduced within {tolerance}.")


@app.command()
def validate(
    dataset: DatasetOption = "digits",
    init_suite: Annotated[
        bool, typer.Option("--init-suite", help="Write a starting suite to expectations/<name>.json from the data")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="With --init-suite: overwrite an existing suite")] = False,
) -> None:
    """Validate a data set against its expectation suite, its row checks and drift from the champion."""
    from datetime import datetime

    from tasks.datasets import load
    from tasks.errors import MlpipeError, ValidationFailed
    from tasks.params import load_params
    from tasks.settings import get_settings
    from tasks.store import champion_profile
    from tasks.suites import build_suite, write_suite
    from tasks.validation import check_dataset

    settings = get_settings()
    data = load(dataset, settings)
    if init_suite:
        path = settings.root / "expectations" / f"{data.name}.json"
        if path.exists() and not force:
            raise MlpipeError(f"{path} exists: edit it, or pass --force to replace it")
        suite = build_suite(data)
        write_suite(suite, path)
        typer.echo(f"Wrote {len(suite['expectations'])} expectations to {path}: review the bounds, then commit it.")
        return
    report = check_dataset(data, load_params(settings).get("validation"), champion_profile(data.name, settings))
    out_dir = settings.outputs_dir / data.name / f"validate-{datetime.now():%Y%m%dT%H%M%S}"
    report_path = report.write(out_dir / "validation.json")
    docs_path = report.write_data_docs(out_dir / "data_docs.html")
    for warning in report.warnings:
        typer.echo(f"warning: {warning}")
    typer.echo(f"Report: {report_path}\nData Docs: {docs_path}")
    if not report.success:
        raise ValidationFailed(f"validation failed for {report.summary()}")
    typer.echo(report.summary())


@app.command()
def compare(
    dataset: DatasetOption = "digits",
    output_format: Annotated[OutputFormat, typer.Option("--format", help="table or json")] = OutputFormat.table,
    plot: Annotated[Path | None, typer.Option(help="Also draw the runs' test metrics by family to this PNG")] = None,
) -> None:
    """Compare the candidate runs of a data set, best first."""
    from tasks.reports import leaderboard
    from tasks.settings import get_settings

    rows = leaderboard(_dataset_name(dataset), get_settings())
    if output_format is OutputFormat.json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        _print_table(rows)
    if plot is not None:
        from tasks.plots import plot_leaderboard

        plot_leaderboard(rows, plot)
        typer.echo(f"Plot: {plot}", err=output_format is OutputFormat.json)


@app.command()
def promote(
    version: Annotated[int, typer.Option("--version", help="The version to make @champion")],
    dataset: DatasetOption = "digits",
) -> None:
    """Make a version @champion by hand, after it loads and predicts in a fresh process."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from tasks.errors import MlpipeError
    from tasks.locks import promotion_lock
    from tasks.promotion import move_champion, serving_check
    from tasks.serving import FreshProcess

    name, settings = _registry(dataset)
    client = mlflow.MlflowClient()
    try:
        client.get_model_version(name, str(version))
    except MlflowException:
        raise MlpipeError(f"{name} has no version {version}") from None
    with FreshProcess() as process:
        serving_check(process, settings.tracking_uri, name, str(version))
    with promotion_lock(settings, name):  # the lock a pipeline's promotion gate takes
        move_champion(client, name, str(version))
        client.set_model_version_tag(
            name, str(version), "promotion", f"champion: promoted by hand (mlpipe promote --version {version})"
        )
    typer.echo(f"{name} v{version} is @champion.")


@app.command()
def rollback(dataset: DatasetOption = "digits") -> None:
    """Give @champion back to the version that held it before."""
    import mlflow

    from tasks.locks import promotion_lock
    from tasks.promotion import rollback as roll_back

    name, settings = _registry(dataset)
    with promotion_lock(settings, name):
        current, previous = roll_back(mlflow.MlflowClient(), name)
    typer.echo(f"{name}: @champion moved back from v{current} to v{previous}.")


@app.command()
def predict(
    input_path: Annotated[Path, typer.Option("--input", help="Raw rows: .csv, .tsv, .parquet or .jsonl")],
    output_path: Annotated[Path, typer.Option("--output", help="Rows with predicted_label and predicted_probability")],
    dataset: DatasetOption = "digits",
) -> None:
    """Label a file of raw rows with the data set's @champion (batch inference)."""
    from tasks.inference import predict_file
    from tasks.settings import get_settings

    summary = predict_file(_dataset_name(dataset), input_path, output_path, get_settings())
    typer.echo(f"{summary['rows']} rows labelled by {summary['dataset']} v{summary['version']}: {output_path}")


app.command()(up)
app.command()(serve)
app.add_typer(data_app, name="data")


def _dataset_name(dataset: str) -> str:
    """A spec's path names its data set by the spec's `name`."""
    from tasks.spec import is_spec_path, read_spec

    return read_spec(Path(dataset)).name if is_spec_path(dataset) else dataset


def _registry(dataset: str):
    """(data set name, settings), with MLflow pointed at the store; an error if it has no model."""
    from tasks.errors import MlpipeError
    from tasks.settings import get_settings
    from tasks.store import connect

    name, settings = _dataset_name(dataset), get_settings()
    if connect(settings, name, create=False) is None:
        raise MlpipeError(f"no runs for data set {name!r} in {settings.shown_tracking_uri}: run `mlpipe run` first")
    return name, settings


def _print_leaderboard(dataset: str, limit: int) -> None:
    from tasks.reports import leaderboard
    from tasks.settings import get_settings

    typer.echo(f"\nLeaderboard for {dataset} (best validation accuracy first; *: chosen by its run):")
    _print_table(leaderboard(dataset, get_settings())[:limit])


def _print_table(rows: list[dict]) -> None:
    header = ("family", "val_accuracy", "test_accuracy", "test_f1_macro", "version", "aliases", "flags", "run_id")
    lines = [header]
    for row in rows:
        lines.append(
            (
                (row["family"] or "?") + (" *" if row.get("selected") else ""),
                _number(row["val_accuracy"]),
                _number(row["test_accuracy"]),
                _number(row["test_f1_macro"]),
                str(row["registered_version"] or "-"),
                ",".join(row["aliases"]) or "-",
                ",".join(row["flags"]) or "-",
                row["run_id"],
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _print_where_to_look() -> None:
    from tasks.settings import get_settings

    typer.echo(f"Browse runs and the registry: mlflow ui --backend-store-uri {get_settings().shown_tracking_uri}")


def _import_stage_libraries() -> None:
    """What the stages import anyway (~10 s here), imported while Prefect's API starts."""
    import importlib

    for module in ("dvc.repo", "great_expectations", "lightning", "mlflow.pyfunc", "sklearn.model_selection"):
        importlib.import_module(module)


def _hide_tracebacks_on_console() -> None:
    """Prefect logs a failed run's traceback; the console keeps its first line (the API keeps it all)."""
    import logging

    from prefect.logging.handlers import PrefectConsoleHandler

    class DropTraceback(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            message = record.getMessage()
            if "Traceback (most recent call last)" in message or record.exc_info:
                # Python 3.11 filters cannot swap the record; the API handler has already sent it.
                record.msg, record.args = message.split("\n", 1)[0], None
                record.exc_info = record.exc_text = None
            return True

    for handler in logging.getLogger().handlers + logging.getLogger("prefect").handlers:
        if isinstance(handler, PrefectConsoleHandler):
            handler.addFilter(DropTraceback())


def _parse(model, **values):
    """Build a pydantic model; a bad value becomes one line naming the parameter."""
    from pydantic import ValidationError

    from tasks.errors import MlpipeError

    try:
        return model(**values)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise MlpipeError(f"bad value for {where} ({first.get('input')!r}): {message}") from None


def main() -> None:
    """Console entry point: one line and a non-zero exit code for every error."""
    # No network here, and telemetry should never slow a run.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    # Prefect's temporary API server needs ~15 s to start on a 2-core machine; its default wait is 20 s.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    debug = "--debug" in sys.argv[1:]
    _stop_like_ctrl_c()
    try:
        code = app(standalone_mode=False)
    except Exception as error:
        if _stopped_by is not None:
            _exit_stopped()
        if _is_usage_error(error):
            ctx = getattr(error, "ctx", None)
            hint = f" (see `{ctx.command_path} --help`)" if ctx else ""
            typer.echo(f"error: {error.format_message()}{hint}", err=True)
            _exit(2)
        if debug:
            raise
        typer.echo(f"error: {_one_line(error)}", err=True)
        _exit(1)
    except BaseException as error:
        # SIGTERM inside a flow run is Prefect's TerminationSignal; a stop may also come back as
        # Lightning's exit(1) after its own Ctrl-C handling.
        if type(error).__name__ == "TerminationSignal":
            _stopped(signal.SIGTERM)
        if _stopped_by is None:
            raise
        _exit_stopped()
    if _stopped_by is not None:  # typer turns a KeyboardInterrupt into the return value 130
        _exit_stopped()
    _exit(code or 0)


_stopped_by: int | None = None  # the signal that stopped this process


def _stopped(signum: int) -> None:
    global _stopped_by
    _stopped_by = _stopped_by or signum


def _stop_like_ctrl_c() -> None:
    """Ctrl-C and SIGTERM (`kill`, a scheduler stopping a job) unwind the process through every
    cleanup on the way out: SIGTERM's default would end it at once, leaving the temporary Prefect
    API and any training worker running. (Inside a flow run, Prefect's own SIGTERM handler does
    the same with its TerminationSignal.)"""

    def stop(signum, frame):
        _stopped(signum)
        raise KeyboardInterrupt

    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is not signal.SIG_IGN:  # a background job of a script keeps ignoring it
            signal.signal(signum, stop)


def _exit_stopped() -> None:
    typer.echo("error: interrupted" if _stopped_by == signal.SIGINT else "error: terminated", err=True)
    _exit(128 + _stopped_by)


def _exit(code: int) -> None:
    """Exit without tearing down every module: with torch, Lightning, GX and MLflow loaded, the
    interpreter's own teardown takes ~2.6 s here. Exit handlers still run (Prefect's log and event
    workers drain, the temporary server stops), and the output is flushed."""
    import atexit

    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _is_usage_error(error: Exception) -> bool:
    """Typer vendors click, whose UsageError is private there; BadParameter is its public subclass."""
    usage_error = typer.BadParameter.__mro__[1]
    return isinstance(error, usage_error)


def _one_line(error: Exception) -> str:
    from tasks.errors import MlpipeError, redact

    message = redact(" ".join(str(error).split()))  # a library's message may quote a URI with its password
    if isinstance(error, MlpipeError):
        return message
    return f"{type(error).__name__}: {message} (run with --debug for the traceback)"
