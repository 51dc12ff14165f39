"""Score a candidate on the held-out test rows."""

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.baseline import TrainedBaseline
from tasks.datasets import Dataset, Split
from tasks.selection import Choice, Ensemble, choose, majority_rate, score_candidates
from tasks.training import TrainedModel

Candidate = TrainedModel | TrainedBaseline | Ensemble  # all offer predict_proba(raw rows)


@dataclass
class Evaluation:
    family: str
    metrics: dict[str, float]  # test/accuracy, test/f1_macro
    confusion_matrix_path: Path
    predictions: np.ndarray  # class indices of the test rows
    artifacts: list[Path] = field(default_factory=list)  # report, per-class metrics, learning curves


def score(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    return {
        "test/accuracy": float(accuracy_score(y_true, y_pred)),
        "test/f1_macro": float(f1_score(y_true, y_pred, average="macro")),
    }


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


def evaluate(model: Candidate, dataset: Dataset, split: Split, out_dir: Path) -> Evaluation:
    """Score a candidate on the test rows: run after the choice, which saw validation rows only."""
    y_test = dataset.class_indices(split.test)
    y_pred = model.predict_proba(dataset.frame.iloc[split.test]).argmax(axis=1)
    metrics = score(y_test, y_pred)
    title = f"{dataset.name} / {model.family}: accuracy {metrics['test/accuracy']:.3f}"
    plot = plot_confusion_matrix(y_test, y_pred, dataset.classes, title, out_dir / "confusion_matrix.png")
    artifacts = write_classification_report(y_test, y_pred, dataset.classes, out_dir)
    if model.history:  # networks: per-epoch curves; the baseline and the ensemble have none
        title = f"{dataset.name} / {model.family}"
        artifacts.append(plot_learning_curves(model.history, title, out_dir / "learning_curves.png"))
    return Evaluation(model.family, metrics, plot, y_pred, artifacts)


def write_classification_report(y_true: np.ndarray, y_pred: np.ndarray, classes: list, out_dir: Path) -> list[Path]:
    """scikit-learn's report as text, and per-class precision, recall, F1 and support as JSON."""
    from sklearn.metrics import classification_report

    names = [str(c) for c in classes]
    labels = list(range(len(classes)))
    text = classification_report(y_true, y_pred, labels=labels, target_names=names, digits=4, zero_division=0)
    per_class = classification_report(
        y_true, y_pred, labels=labels, target_names=names, output_dict=True, zero_division=0
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "classification_report.txt").write_text(text)
    (out_dir / "per_class_metrics.json").write_text(json.dumps({n: per_class[n] for n in names}, indent=2))
    return [out_dir / "classification_report.txt", out_dir / "per_class_metrics.json"]


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


@task(name="evaluate_model", cache_policy=NO_CACHE)
def evaluate_model(model: Candidate, dataset: Dataset, split: Split, out_dir: Path) -> Evaluation:
    return evaluate(model, dataset, split, out_dir)


@task(name="choose_candidate", cache_policy=NO_CACHE)
def choose_candidate(models: list[Candidate], dataset: Dataset, split: Split, ensemble: bool = False) -> Choice:
    """Score every candidate (and, when `ensemble`, the ensemble of those close to the best) on
    the validation rows and pick one; the test rows are not read."""
    scores, members = score_candidates(models, dataset, split, ensemble)
    return choose(scores, majority_rate(dataset, split), members)
