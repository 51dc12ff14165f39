"""Choose the candidate to register on the validation rows only: the test rows judge, never choose.

Every candidate (the networks, the classical baseline, the networks' ensemble) is scored the same
way on the same validation rows. The highest validation accuracy wins, then the higher macro F1.
On small data sets most candidates tie there (5 validation rows for GunPoint), so a tie goes to
the lower validation log loss, a proper scoring rule: the ensemble wins only when averaging
lowers it. The baseline takes a tie only from no network, since log loss is no fair judge of it
(1-NN's probabilities are 0 or 1).
"""

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from tasks.baseline import FAMILY as BASELINE
from tasks.datasets import Dataset, Split

SELECTED_BY = "selection/val_accuracy"  # the metric that chooses, as logged in every candidate run
ENSEMBLE = "ensemble"
BELOW_MAJORITY = "below the majority-class rate"


@dataclass
class EnsembleConfig:
    members: list = field(default_factory=list)  # the members' TrainConfigs
    family: str = ENSEMBLE


@dataclass
class Ensemble:
    """The mean of the networks' probabilities, served as one model."""

    members: list  # TrainedModel
    family: str = ENSEMBLE
    history: list[dict] = field(default_factory=list)
    fit_seconds: float = 0.0

    @property
    def config(self) -> EnsembleConfig:
        return EnsembleConfig(members=[m.config for m in self.members])

    @property
    def training_key(self) -> str:
        from tasks.caching import digest

        return digest(ENSEMBLE, [m.training_key for m in self.members])

    @property
    def preprocessing(self) -> dict:
        return self.members[0].preprocessing  # the classes; each member keeps its own inputs

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return np.mean([m.predict_proba(frame) for m in self.members], axis=0)

    def run_params(self) -> dict:
        return {"family": ENSEMBLE, "members": ",".join(m.family for m in self.members)}


@dataclass
class Choice:
    """Which candidate a run registers, and the validation figures it was chosen on."""

    family: str
    selected_by: str
    scores: dict[str, dict[str, float]]  # family -> selection/val_accuracy, .../val_f1_macro, .../val_loss
    majority_rate: float  # accuracy of always answering the training rows' most common class
    notes: list[str] = field(default_factory=list)  # plain lines for the run's summary

    @property
    def value(self) -> float:
        return self.scores[self.family]["selection/val_accuracy"]

    def flags(self, family: str) -> list[str]:
        below = self.scores[family]["selection/val_accuracy"] < self.majority_rate
        return [BELOW_MAJORITY] if below else []

    def as_dict(self) -> dict:
        return asdict(self)


def validation_scores(model, dataset: Dataset, split: Split) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, log_loss

    probabilities = model.predict_proba(dataset.frame.iloc[split.val])
    y_true, y_pred = dataset.class_indices(split.val), probabilities.argmax(axis=1)
    labels = list(range(len(dataset.classes)))
    return {
        "selection/val_accuracy": float(accuracy_score(y_true, y_pred)),
        "selection/val_f1_macro": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "selection/val_loss": float(log_loss(y_true, np.clip(probabilities, 1e-7, 1.0), labels=labels)),
    }


def majority_rate(dataset: Dataset, split: Split) -> float:
    """Validation accuracy of a model that always answers the most common training class."""
    train = dataset.class_indices(split.train)
    return float(np.mean(dataset.class_indices(split.val) == np.bincount(train).argmax()))


def choose(scores: dict[str, dict[str, float]], majority: float) -> Choice:
    """The best candidate on validation; `scores` maps family -> validation_scores(...)."""

    def key(family: str) -> tuple:
        s = scores[family]
        return (s["selection/val_accuracy"], s["selection/val_f1_macro"], family != BASELINE, -s["selection/val_loss"])

    best = max(scores, key=key)
    choice = Choice(best, SELECTED_BY, scores, majority)
    choice.notes = _notes(choice)
    return choice


def _notes(choice: Choice) -> list[str]:
    notes = []
    for family in choice.scores:
        if choice.flags(family):
            accuracy = choice.scores[family]["selection/val_accuracy"]
            notes.append(
                f"{family} ends below the majority-class rate: validation accuracy {accuracy:.4f} "
                f"< {choice.majority_rate:.4f}"
            )
    if BASELINE in choice.scores and len(choice.scores) > 1:
        baseline = choice.scores[BASELINE]["selection/val_accuracy"]
        networks = {f: s["selection/val_accuracy"] for f, s in choice.scores.items() if f not in (BASELINE, ENSEMBLE)}
        if choice.family == BASELINE and networks:
            best = max(networks, key=networks.get)
            notes.append(
                f"No network beats the classical baseline on the validation rows "
                f"(baseline {baseline:.4f}, best network {best} {networks[best]:.4f}): the baseline is registered."
            )
    return notes
