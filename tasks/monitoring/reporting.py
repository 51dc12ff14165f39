"""Where a batch's monitoring figures go: an MLflow run of the data set's experiment (role
`monitoring`, beside the training runs it is compared with) and a Markdown summary with a chart
of the class mix, for the Prefect artifact."""

from pathlib import Path
from tempfile import TemporaryDirectory

from tasks.infra.settings import Settings
from tasks.monitoring.watch import Monitoring
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
    expected = monitoring.expected or {}
    for label in sorted(set(monitoring.predicted) | set(expected)):
        now, then = monitoring.predicted.get(label, 0.0), expected.get(label)
        was = f"{then:.1%} | `{_bar(then)}`" if then is not None else "n/a | "
        lines.append(f"| {label} | {now:.1%} | `{_bar(now)}` | {was} |")
    return "\n".join(lines)


def _bar(share: float) -> str:
    return "█" * round(share * BAR) or "▏"


def plot_class_mix(monitoring: Monitoring, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels = sorted(set(monitoring.predicted) | set(monitoring.expected or {}))
    positions = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(max(4, 0.6 * len(labels) + 2), 3))
    ax.bar(positions - 0.2, [monitoring.predicted.get(c, 0) for c in labels], 0.4, label="this batch")
    if monitoring.expected:
        ax.bar(positions + 0.2, [monitoring.expected.get(c, 0) for c in labels], 0.4, label="champion, test rows")
    ax.set_xticks(positions, labels, rotation=90 if len(labels) > 12 else 0)
    ax.set_ylabel("share of predictions")
    ax.set_title(f"{monitoring.dataset} v{monitoring.version}: predicted class mix")
    ax.legend()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
