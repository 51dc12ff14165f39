"""`mlpipe validate` and `mlpipe data ...`: data sets, their checks and their DVC versions."""

from pathlib import Path
from typing import Annotated

import typer

from flows.cli.options import DEFAULT_DATASET, DatasetOption
from tasks.infra.vocabulary import Format, Modality

data_app = typer.Typer(help="Data sets versioned with DVC: add, push, pull.", no_args_is_help=True)


@data_app.command("add")
def data_add(
    path: Annotated[Path, typer.Argument(help="A file, or a folder of class sub-folders of images or sounds")],
    name: Annotated[str, typer.Option(help="The data set's name: its experiment, model and suite")],
    modality: Annotated[Modality, typer.Option(help="What the samples are")],
    data_format: Annotated[Format | None, typer.Option("--format", help="[default: from PATH]")] = None,
    label_column: Annotated[str | None, typer.Option(help="The label's column [default: label]")] = None,
    text_column: Annotated[str | None, typer.Option(help="The text's column (text data)")] = None,
    test: Annotated[Path | None, typer.Option(help="A test file; else a seeded, stratified test fraction")] = None,
    path_column: Annotated[
        str | None, typer.Option(help="Audio table: the column of sound files, relative to the table")
    ] = None,
) -> None:
    """Add a data set (or a new version of one): copy it to data/<name>, track it with DVC and push it."""
    from tasks.data.catalog import add_dataset
    from tasks.infra.settings import get_settings

    settings = get_settings()
    added = add_dataset(
        path, name, modality, settings, data_format, test,
        label_column=label_column, text_column=text_column, path_column=path_column,
    )  # fmt: skip
    if added.previous_hash == added.data_hash:
        typer.echo(f"{name}: unchanged (version {added.data_hash[:12]}, {added.rows} rows); nothing to commit.")
        return
    was = f", replacing {added.previous_hash[:12]}" if added.previous_hash else ""
    typer.echo(f"{name}: version {added.data_hash[:12]} ({added.rows} rows){was}; pushed to {added.remote}")
    listed = " ".join(str(f.relative_to(settings.root)) for f in added.files_to_commit(settings.root))
    typer.echo(f"Record it in git: git add {listed} && git commit -m 'Data {name} {added.data_hash[:12]}'")
    typer.echo(f"Train on it: mlpipe run --dataset {name}")
    _announce(name, added)


def _to_the_project_server() -> None:
    """With no server configured, the project's server where it runs (none is started for an event
    that nothing would hear: `mlpipe serve` keeps it up)."""
    import os

    from tasks.infra.params import load_params
    from tasks.infra.project_server import attach_running, temporary_servers
    from tasks.infra.settings import get_settings

    if os.environ.get("PREFECT_API_URL") or temporary_servers():
        return
    settings = get_settings()
    attach_running(settings, load_params(settings).server.idle_minutes)


def _announce(name: str, added) -> None:
    """Tell the Prefect server, if there is one: `mlpipe serve`'s trigger of the data set's
    deployment starts a training run. The data is in either way, so a server that does not take
    the event is a warning."""
    from tasks.infra.errors import MlpipeError
    from tasks.infra.events import emit
    from tasks.infra.monitoring_params import DATA_UPDATED

    payload = {"data_hash": added.data_hash, "previous_hash": added.previous_hash, "rows": added.rows}
    _to_the_project_server()
    try:
        sent_to = emit(DATA_UPDATED, name, payload)
    except MlpipeError as error:
        typer.echo(f"warning: {error}", err=True)
        return
    if sent_to:
        typer.echo(f"Sent {DATA_UPDATED} to {sent_to}: a deployment with a trigger for {name} retrains it")


@data_app.command("builtin")
def data_builtin(
    name: Annotated[str, typer.Argument(help="A built-in data set: digits")] = DEFAULT_DATASET,
) -> None:
    """Write a built-in data set to data/<name> (the first stage of dvc.yaml)."""
    from tasks.data.builtin import BUILT_IN, write_digits
    from tasks.infra.errors import MlpipeError
    from tasks.infra.settings import get_settings

    if name not in BUILT_IN:
        raise MlpipeError(f"no built-in data set {name!r}: built-in data sets are {', '.join(BUILT_IN)}")
    typer.echo(f"Wrote {write_digits(get_settings().data_dir / name)}")


@data_app.command("push")
def data_push() -> None:
    """Push data sets and DVC-tracked models to the remote (a local folder unless one is configured)."""
    from tasks.data.versioning import ensure_remote, push
    from tasks.infra.settings import get_settings

    root = get_settings().root
    pushed = push(root)
    typer.echo(f"Pushed {pushed} files to {ensure_remote(root)}.")


@data_app.command("pull")
def data_pull() -> None:
    """Pull data sets and DVC-tracked models from the remote into this checkout."""
    from tasks.data.versioning import ensure_remote, pull
    from tasks.infra.settings import get_settings

    root = get_settings().root
    missing = pull(root)
    typer.echo(f"Pulled from {ensure_remote(root)}.")
    if missing:
        typer.echo(f"Not in the remote, made again by `dvc repro` or a run: {', '.join(missing)}")


def validate(
    dataset: DatasetOption = DEFAULT_DATASET,
    init_suite: Annotated[
        bool, typer.Option("--init-suite", help="Write a starting suite to expectations/<name>.json from the data")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="With --init-suite: overwrite an existing suite")] = False,
) -> None:
    """Validate a data set against its expectation suite, its row checks and drift from the champion."""
    from tasks.data.loading import load
    from tasks.infra.errors import ValidationFailed
    from tasks.infra.settings import get_settings
    from tasks.registry.store import champion_profile
    from tasks.validation import checking

    settings = get_settings()
    data = load(dataset, settings)
    if init_suite:
        path, count = checking.init_suite(data, settings, force)
        typer.echo(f"Wrote {count} expectations to {path}: review the bounds, then commit it.")
        return
    report = checking.validate_now(data, settings, champion_profile(data.name, settings))
    for warning in report.warnings:
        typer.echo(f"warning: {warning}")
    typer.echo(f"Report: {report.report_path}\nData Docs: {report.docs_path}")
    if not report.success:
        raise ValidationFailed(f"validation failed for {report.summary()}")
    typer.echo(report.summary())
