"""Charts of a candidate: its confusion matrix on the test rows and its learning curves."""

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
