"""Where a batch's monitoring figures go: an MLflow run of the data set's experiment (role
`monitoring`, beside the training runs it is compared with) and a Markdown summary with a chart
of the class mix, for the Prefect artifact."""

from pathlib import Path
from tempfile import TemporaryDirectory

from tasks.infra.settings import Settings
from tasks.monitoring.watch import OTHER, Monitoring, top_classes
from tasks.registry.run_logging import rounded

BAR = 20  # characters of the chart's longest bar


def log_monitoring_run(monitoring: Monitoring, settings: Settings, tags: dict) -> str:
    """The run's id. Its name says which version scored which file; the figures are its metrics."""
    import mlflow

    from tasks.registry.store import connect

    experiment_id = connect(settings, monitoring.dataset)
    run_tags = {
        **tags,
        "mlpipe.role": "monitoring",
        "dataset": monitoring.dataset,
        "model_version": monitoring.version,
        "alias": monitoring.alias,
        "drifted": str(bool(monitoring.drifted)).lower(),
        "monitoring.summary": monitoring.summary(),
    }
    name = f"monitor-v{monitoring.version}"
    with (
        mlflow.start_run(experiment_id=experiment_id, run_name=name, tags=run_tags) as run,
        TemporaryDirectory() as tmp,
    ):
        mlflow.log_metrics(rounded(monitoring.metrics()))
        mlflow.log_dict(monitoring.as_dict(), "monitoring.json")
        mlflow.log_artifact(str(plot_class_mix(monitoring, Path(tmp) / "class_mix.png")))
    return run.info.run_id


def markdown(monitoring: Monitoring, run_link: str | None = None) -> str:
    """The checks as a table and the class mix as bars: the batch's beside the champion's."""
    verdict = "**Drift detected**" if monitoring.drifted else "No drift"
    lines = [
        f"# Monitoring {monitoring.dataset} v{monitoring.version} (@{monitoring.alias})",
        "",
        f"{verdict}: {monitoring.summary()}. {monitoring.rows} rows."
        + (f" [MLflow run]({run_link})" if run_link else ""),
        "",
        "| check | observed | within limit | detail |",
        "|---|---|---|---|",
        *(
            f"| {c.name} | {c.observed:.4g} | {'yes' if c.success else '**no**'} | {c.message} |"
            for c in monitoring.checks
        ),
        "",
        "## Predicted class mix: this batch against the champion's test predictions",
        "",
        "| class | batch | | champion | |",
        "|---|---|---|---|---|",
    ]
    labels, now, then = class_mix(monitoring)
    for label, batch, champion in zip(labels, now, then, strict=True):
        was = f"{champion:.1%} | `{_bar(champion)}`" if monitoring.expected is not None else "n/a | "
        lines.append(f"| {label} | {batch:.1%} | `{_bar(batch)}` | {was} |")
    return "\n".join(lines)


def class_mix(monitoring: Monitoring) -> tuple[list[str], list[float], list[float]]:
    """The top classes' shares in the batch and in the champion's predictions, the rest as one
    "other (n classes)"."""
    predicted, expected = monitoring.predicted, monitoring.expected or {}
    shown, other = top_classes(predicted, expected)
    labels = [*shown, *([f"{OTHER} ({len(other)} classes)"] if other else [])]
    now = [predicted.get(c, 0.0) for c in shown] + ([sum(predicted.get(c, 0.0) for c in other)] if other else [])
    then = [expected.get(c, 0.0) for c in shown] + ([sum(expected.get(c, 0.0) for c in other)] if other else [])
    return labels, now, then


def _bar(share: float) -> str:
    return "█" * round(share * BAR) or "▏"


def plot_class_mix(monitoring: Monitoring, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels, now, then = class_mix(monitoring)
    positions = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(max(4, 0.6 * len(labels) + 2), 3))
    ax.bar(positions - 0.2, now, 0.4, label="this batch")
    if monitoring.expected:
        ax.bar(positions + 0.2, then, 0.4, label="champion, test rows")
    ax.set_xticks(positions, labels, rotation=90 if len(labels) > 12 else 0)
    ax.set_ylabel("share of predictions")
    ax.set_title(f"{monitoring.dataset} v{monitoring.version}: predicted class mix")
    ax.legend()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
