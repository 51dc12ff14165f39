"""What people read about a data set's runs: the leaderboard (the `mlpipe compare` contract), its
chart, and the Prefect UI's artifacts of a pipeline run."""

from pathlib import Path
from typing import TYPE_CHECKING

from tasks.evaluation.selection import SELECTED_BY
from tasks.infra.errors import MlpipeError
from tasks.infra.settings import Settings
from tasks.registry.links import artifact_url, model_url, run_url
from tasks.registry.store import connect, mlflow_ui_url

if TYPE_CHECKING:
    from tasks.registry.registering import Registration


COST_KEYS = ("size_bytes", "parameters", "p50_ms", "p95_ms", "rows_per_second")  # tasks/compression/measure.py


def leaderboard(dataset: str, settings: Settings) -> list[dict]:
    """One row per candidate run of the data set, best first (the `mlpipe compare` contract), and one
    per variant a compression run weighed (`variant` set, with size and latency; `mlpipe compress`)."""
    import mlflow

    experiment_id = connect(settings, dataset, create=False)
    if experiment_id is None:
        raise MlpipeError(
            f"no runs for data set {dataset!r} in {settings.shown_tracking_uri}: "
            f"run `mlpipe run --dataset {dataset}` first"
        )
    runs = [
        run
        for role in ("candidate", "variant")
        for run in mlflow.search_runs(
            experiment_ids=[experiment_id], filter_string=f"tags.`mlpipe.role` = '{role}'", output_format="list"
        )
    ]
    versions, aliases = _registered(dataset) if runs else ({}, {})
    rows = []
    for run in runs:
        version = versions.get(run.info.run_id)
        rows.append(_row(run, dataset, experiment_id, version, sorted(aliases.get(version, []))))
    # Best first by the figure that chooses; the test figure only breaks ties among older runs without one.
    return sorted(rows, key=lambda r: (r["val_accuracy"] or 0.0, r["test_accuracy"] or 0.0), reverse=True)


def _registered(dataset: str) -> tuple[dict[str, int], dict[int, list[str]]]:
    """(run id -> the version registered from it, version -> its aliases); both empty when nothing is registered."""
    import mlflow

    client = mlflow.MlflowClient()
    try:
        model = client.get_registered_model(dataset)
    except mlflow.exceptions.MlflowException:
        return {}, {}  # runs exist but nothing was registered yet
    versions = {v.run_id: int(v.version) for v in client.search_model_versions(f"name = '{dataset}'")}
    aliases = {}
    for alias, version in model.aliases.items():
        aliases.setdefault(int(version), []).append(alias)
    return versions, aliases


def _row(run, dataset: str, experiment_id: str, version: int | None, aliases: list[str]) -> dict:
    """A run's row of the leaderboard."""
    # Runs logged before the metric names were unified kept the choosing figure apart.
    val_accuracy = run.data.metrics.get("selection/val_accuracy", run.data.metrics.get(SELECTED_BY))
    flags = run.data.tags.get("flags", "none")
    return {
        "run_id": run.info.run_id,
        "dataset": dataset,
        "family": run.data.tags.get("family"),
        "init": run.data.tags.get("init", "scratch"),  # where its weights started
        "val_accuracy": val_accuracy,  # out-of-fold when chosen by cross-validation
        "val_accuracy_sd": run.data.metrics.get("val/accuracy_sd"),  # over the folds
        "selected_by": run.data.tags.get("selected_by", SELECTED_BY) if val_accuracy is not None else None,
        "selected": run.data.tags.get("selected") == "true",
        "flags": [] if flags == "none" else flags.split(", "),
        "test_accuracy": run.data.metrics.get("test/accuracy"),
        "test_f1_macro": run.data.metrics.get("test/f1_macro"),
        "registered_version": version,
        "aliases": aliases,
        "data_hash": run.data.tags.get("data_hash"),
        "git_sha": run.data.tags.get("git_sha"),
        "experiment_id": experiment_id,
        "started": _utc(run.info.start_time),
        "flow_run": run.data.tags.get("prefect_flow_run_name") or run.data.tags.get("prefect_flow_run_id"),
        # A compression run's variants (and the champion it re-measured): what each costs on the CPU.
        "variant": run.data.tags.get("variant"),
        "variant_of": run.data.tags.get("compact_of"),
        **{key: run.data.metrics.get(f"compression/{key}") for key in COST_KEYS},
    }


DATA_DOCS = "validation/data_docs.html"  # in a pipeline run (tasks/registry/run_logging.py)
LEADERBOARD_ROWS = 30  # the newest candidate runs in a run's artifact; `mlpipe compare` has them all


def leaderboard_markdown(rows: list[dict], ui: str, this_run: set[str]) -> str:
    """The newest candidate runs as a table for the Prefect UI: rounded figures, this run's
    candidates marked, each linked to its MLflow run."""
    newest = sorted(rows, key=lambda r: r["started"] or "", reverse=True)[:LEADERBOARD_ROWS]
    lines = [
        "| | candidate | val accuracy | test accuracy | test F1 | size (KB) | ms/row (p50) | version | aliases | init "
        "| flags | started | flow run |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in newest:
        name = f"{row['dataset']}/{row['family']}" + (f" [{row['variant']}]" if row.get("variant") else "")
        link = f"[{name}]({run_url(ui, row['experiment_id'], row['run_id'])})"
        size = row.get("size_bytes")
        cells = [
            "**this run**" if row["run_id"] in this_run else "",
            link + (" (chosen)" if row["selected"] else ""),
            _rounded(row["val_accuracy"]) + (f" ± {row['val_accuracy_sd']:.4f}" if row.get("val_accuracy_sd") else ""),
            *(_rounded(row[k]) for k in ("test_accuracy", "test_f1_macro")),
            "" if size is None else f"{size / 1024:.1f}",
            "" if row.get("p50_ms") is None else f"{row['p50_ms']:.3f}",
            f"v{row['registered_version']}" if row["registered_version"] else "",
            ", ".join(f"@{alias}" for alias in row["aliases"]),
            row.get("init") or "scratch",
            ", ".join(row["flags"]),
            row["started"] or "",
            row["flow_run"] or "",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _rounded(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _utc(milliseconds: int | None) -> str | None:
    from datetime import UTC, datetime

    return None if milliseconds is None else f"{datetime.fromtimestamp(milliseconds / 1000, UTC):%Y-%m-%d %H:%M} UTC"


def plot_leaderboard(rows: list[dict], path: Path) -> Path:
    """Test accuracy and macro F1 of every candidate run, grouped by family, oldest run first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = sorted({r["family"] or "?" for r in rows})
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, metric in zip(axes, ("test_accuracy", "test_f1_macro"), strict=True):
        for offset, family in enumerate(families):
            scores = [r[metric] for r in rows if (r["family"] or "?") == family and r[metric] is not None]
            ax.scatter([offset] * len(scores), scores, alpha=0.7, label=family)
            if scores:
                ax.hlines(max(scores), offset - 0.3, offset + 0.3, colors="black", linewidth=1)
        ax.set_xticks(range(len(families)), families)
        ax.set_title(metric.replace("_", " "))
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("score on the test rows (line: best run)")
    fig.suptitle(f"{rows[0]['dataset']}: {len(rows)} candidate runs" if rows else "no runs")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def publish(registration: "Registration", settings: Settings) -> None:
    """The Prefect UI's view of the result: the decision, the leaderboard, links into MLflow."""
    import mlflow
    from prefect.artifacts import create_link_artifact, create_markdown_artifact

    from tasks.infra.runs import artifact_key

    name, key = registration.dataset, artifact_key(registration.dataset)
    create_markdown_artifact(
        key=f"promotion-{key}", markdown=registration.decision_markdown, description=registration.reason[:500]
    )
    ui = mlflow_ui_url(settings)
    create_markdown_artifact(
        key=f"leaderboard-{key}",
        markdown=leaderboard_markdown(leaderboard(name, settings), ui, set(registration.candidate_run_ids.values())),
        description=f"Candidate runs of {name}, newest first; the registry keeps the history",
    )
    experiment_id = mlflow.MlflowClient().get_run(registration.parent_run_id).info.experiment_id
    create_link_artifact(
        key=f"mlflow-run-{key}",
        link=run_url(ui, experiment_id, registration.parent_run_id),
        link_text=f"MLflow run of this pipeline run ({name})",
    )
    if DATA_DOCS in {a.path for a in mlflow.MlflowClient().list_artifacts(registration.parent_run_id, "validation")}:
        create_link_artifact(
            key=f"data-docs-{key}",
            link=artifact_url(ui, experiment_id, registration.parent_run_id, DATA_DOCS),
            link_text=f"Data Docs of {name}'s validation: expectations, row checks and drift (in MLflow)",
        )
    create_link_artifact(
        key=f"mlflow-model-{key}",
        link=model_url(ui, name, registration.version),
        link_text=f"{name} v{registration.version} in the MLflow model registry",
    )
