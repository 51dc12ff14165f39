"""Score a candidate on the held-out test rows."""

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tasks.evaluation.plots import plot_confusion_matrix, plot_learning_curves
from tasks.types import Candidate, Dataset, Split


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
