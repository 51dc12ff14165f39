"""Charts: a candidate's confusion matrix and learning curves, and the runs of a data set side by side."""

from pathlib import Path

import numpy as np

ANNOTATED_CLASSES = 30  # beyond this many classes the confusion matrix is drawn as colours only


def plot_confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, classes: list, title: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    many = len(classes) > ANNOTATED_CLASSES  # the cells' numbers would overprint each other
    size = 6 if not many else min(6 + len(classes) / 10, 20)
    fig, ax = plt.subplots(figsize=(size, size))
    ConfusionMatrixDisplay.from_predictions(
        y_true,
        y_pred,
        labels=range(len(classes)),
        display_labels=classes,
        ax=ax,
        colorbar=many,
        include_values=not many,
        xticks_rotation="vertical" if many else "horizontal",
    )
    ax.set_title(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_learning_curves(history: list[dict], title: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [e["epoch"] for e in history]
    fig, (loss, accuracy) = plt.subplots(1, 2, figsize=(10, 4))
    for name in ("train/loss", "val/loss"):
        loss.plot(epochs, [e.get(name) for e in history], label=name)
    for name in ("train/accuracy", "val/accuracy"):
        accuracy.plot(epochs, [e.get(name) for e in history], label=name)
    for ax, ylabel in ((loss, "loss"), (accuracy, "accuracy")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.legend()
    fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


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
