"""`mlpipe data ...`: data sets versioned with DVC."""

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


class Modality(StrEnum):
    image = "image"
    sequence = "sequence"
    text = "text"


class DataFormat(StrEnum):
    csv = "csv"
    tsv = "tsv"
    parquet = "parquet"
    ucr = "ucr"
    npz = "npz"
    image_folder = "image-folder"


data_app = typer.Typer(help="Data sets versioned with DVC: add, push, pull.", no_args_is_help=True)


@data_app.command("add")
def data_add(
    path: Annotated[Path, typer.Argument(help="A file, or a folder of class sub-folders of images")],
    name: Annotated[str, typer.Option(help="The data set's name: its experiment, model and suite")],
    modality: Annotated[Modality, typer.Option(help="What the samples are")],
    data_format: Annotated[DataFormat | None, typer.Option("--format", help="[default: from PATH]")] = None,
    label_column: Annotated[str | None, typer.Option(help="The label's column [default: label]")] = None,
    text_column: Annotated[str | None, typer.Option(help="The text's column (text data)")] = None,
    test: Annotated[Path | None, typer.Option(help="A test file; else a seeded, stratified test fraction")] = None,
) -> None:
    """Add a data set (or a new version of one): copy it to data/<name>, track it with DVC and push it."""
    from tasks.catalog import add_dataset
    from tasks.settings import get_settings

    settings = get_settings()
    fmt = data_format.value if data_format else None
    added = add_dataset(
        path, name, modality.value, settings, fmt, test, label_column=label_column, text_column=text_column
    )
    root = settings.root
    if added.previous_hash == added.data_hash:
        typer.echo(f"{name}: unchanged (version {added.data_hash[:12]}, {added.rows} rows); nothing to commit.")
        return
    was = f", replacing {added.previous_hash[:12]}" if added.previous_hash else ""
    typer.echo(f"{name}: version {added.data_hash[:12]} ({added.rows} rows){was}; pushed to {added.remote}")
    files = [added.dvc_file, added.spec_path, added.dvc_file.parent / ".gitignore", root / "params.yaml"]
    listed = " ".join(str(f.relative_to(root)) for f in files if f.exists())
    typer.echo(f"Record it in git: git add {listed} && git commit -m 'Data {name} {added.data_hash[:12]}'")
    typer.echo(f"Train on it: mlpipe run --dataset {name}")


@data_app.command("builtin")
def data_builtin(
    name: Annotated[str, typer.Argument(help="A built-in data set: digits")] = "digits",
) -> None:
    """Write a built-in data set to data/<name> (the first stage of dvc.yaml)."""
    from tasks.datasets import BUILT_IN, write_digits
    from tasks.errors import MlpipeError
    from tasks.settings import get_settings

    if name not in BUILT_IN:
        raise MlpipeError(f"no built-in data set {name!r}: built-in data sets are {', '.join(BUILT_IN)}")
    typer.echo(f"Wrote {write_digits(get_settings().data_dir / name)}")


@data_app.command("push")
def data_push() -> None:
    """Push data sets and DVC-tracked models to the remote (a local folder unless one is configured)."""
    from tasks.settings import get_settings
    from tasks.versioning import ensure_remote, push

    root = get_settings().root
    pushed = push(root)
    typer.echo(f"Pushed {pushed} files to {ensure_remote(root)}.")


@data_app.command("pull")
def data_pull() -> None:
    """Pull data sets and DVC-tracked models from the remote into this checkout."""
    from tasks.settings import get_settings
    from tasks.versioning import ensure_remote, pull

    root = get_settings().root
    pull(root)
    typer.echo(f"Pulled from {ensure_remote(root)}.")
