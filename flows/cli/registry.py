"""`mlpipe compare`, `promote`, `rollback`, `predict` and `reproduce`: the registry's models."""

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from flows.cli.options import DEFAULT_DATASET, DatasetOption, dataset_name


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


def compare(
    dataset: DatasetOption = DEFAULT_DATASET,
    output_format: Annotated[OutputFormat, typer.Option("--format", help="table or json")] = OutputFormat.table,
    plot: Annotated[Path | None, typer.Option(help="Also draw the runs' test metrics by family to this PNG")] = None,
) -> None:
    """Compare the candidate runs of a data set, best first."""
    from tasks.infra.settings import get_settings
    from tasks.registry.leaderboard import leaderboard

    rows = leaderboard(dataset_name(dataset), get_settings())
    if output_format is OutputFormat.json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        _print_table(rows)
    if plot is not None:
        from tasks.registry.leaderboard import plot_leaderboard

        plot_leaderboard(rows, plot)
        typer.echo(f"Plot: {plot}", err=output_format is OutputFormat.json)


def promote(
    version: Annotated[int, typer.Option("--version", help="The version to make @champion")],
    dataset: DatasetOption = DEFAULT_DATASET,
) -> None:
    """Make a version @champion by hand, after it loads and predicts in a fresh process."""
    from tasks.registry.aliases import promote_by_hand

    name, settings = _registry(dataset)
    promote_by_hand(settings, name, str(version))
    typer.echo(f"{name} v{version} is @champion.")


def rollback(dataset: DatasetOption = DEFAULT_DATASET) -> None:
    """Give @champion back to the version that held it before."""
    from tasks.registry.aliases import roll_back

    name, settings = _registry(dataset)
    current, previous = roll_back(settings, name)
    typer.echo(f"{name}: @champion moved back from v{current} to v{previous}.")


def predict(
    input_path: Annotated[Path, typer.Option("--input", help="Raw rows: .csv, .tsv, .parquet or .jsonl")],
    output_path: Annotated[Path, typer.Option("--output", help="Rows with predicted_label and predicted_probability")],
    dataset: DatasetOption = DEFAULT_DATASET,
    alias: Annotated[
        str, typer.Option(help="The version to label with: champion, compact (`mlpipe compress`), ...")
    ] = "champion",
) -> None:
    """Label a file of raw rows with the data set's @champion, or another alias (batch inference)."""
    from tasks.infra.settings import get_settings
    from tasks.registry.batch_scoring import predict_file

    summary = predict_file(dataset_name(dataset), input_path, output_path, get_settings(), alias=alias)
    typer.echo(f"{summary['rows']} rows labelled by {summary['dataset']} v{summary['version']}: {output_path}")


def reproduce(
    version: Annotated[int, typer.Option("--version", help="The registered version to retrain")],
    dataset: DatasetOption = DEFAULT_DATASET,
    tolerance: Annotated[
        float, typer.Option(help="Largest metric difference that still counts as reproduced (0.005: 0.5 points)")
    ] = 0.005,
) -> None:
    """Retrain a registered version from its recorded data version and settings; compare the metrics."""
    from tasks.infra.errors import MlpipeError
    from tasks.registry.reproduction import reproduce as retrain

    name, settings = _registry(dataset)
    result = retrain(name, str(version), settings)
    for warning in result.warnings:
        typer.echo(f"warning: {warning}")
    typer.echo(f"{name} v{version} retrained from data {result.data_hash[:12]} in {result.out_dir}")
    typer.echo(f"{'metric':<16}{'registered':>12}{'reproduced':>12}{'difference':>12}")
    for metric, registered, reproduced in result.rows:
        typer.echo(f"{metric:<16}{registered:>12.4f}{reproduced:>12.4f}{reproduced - registered:>+12.4f}")
    worst = result.worst_difference()
    if worst > tolerance:
        raise MlpipeError(f"{name} v{version} did not reproduce: a metric moved {worst:.4f}, more than {tolerance}")
    typer.echo(f"Reproduced within {tolerance}.")


def print_leaderboard(dataset: str, limit: int) -> None:
    from tasks.infra.settings import get_settings
    from tasks.registry.leaderboard import leaderboard

    typer.echo(f"\nLeaderboard for {dataset} (best validation accuracy first; *: chosen by its run):")
    _print_table(leaderboard(dataset, get_settings())[:limit])


def _registry(dataset: str):
    """(data set name, settings), with MLflow pointed at the store; an error if it has no model."""
    from tasks.infra.settings import get_settings
    from tasks.registry.store import connect_existing

    name, settings = dataset_name(dataset), get_settings()
    connect_existing(settings, name)
    return name, settings


SOMETIMES = ("val_sd", "size_KB", "p50_ms")  # leaderboard columns shown only where a row has them


def _print_table(rows: list[dict]) -> None:
    header = ("family", "val_accuracy", "val_sd", "test_accuracy", "test_f1_macro", "size_KB", "p50_ms", "version")
    header += ("aliases", "init", "selected_by", "flags", "run_id")
    lines = [header]
    for row in rows:
        size, p50 = row.get("size_bytes"), row.get("p50_ms")
        name = (row["family"] or "?") + (f" [{row['variant']}]" if row.get("variant") else "")
        lines.append(
            (
                name + (" *" if row.get("selected") else ""),
                _number(row["val_accuracy"]),
                _number(row.get("val_accuracy_sd")),  # across the folds of a cross-validated choice
                _number(row["test_accuracy"]),
                _number(row["test_f1_macro"]),
                "-" if size is None else f"{size / 1024:.1f}",
                "-" if p50 is None else f"{p50:.3f}",
                str(row["registered_version"] or "-"),
                ",".join(row["aliases"]) or "-",
                row.get("init") or "scratch",
                row.get("selected_by") or "-",
                ",".join(row["flags"]) or "-",
                row["run_id"],
            )
        )
    # Columns only some rows have (cross-validation's spread, a compressed variant's cost): shown
    # when one row has them.
    empty = [i for i, name in enumerate(header) if name in SOMETIMES and all(line[i] == "-" for line in lines[1:])]
    lines = [tuple(cell for i, cell in enumerate(line) if i not in empty) for line in lines]
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    for line in lines:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
