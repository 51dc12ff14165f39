"""Choose the candidate to register on the validation rows only: the test rows judge, never choose.

Every candidate (the networks, the classical ones, an ensemble of them) is scored the same way on
the same rows: the validation rows, or on small data the out-of-fold rows of cross-validation.
The ensemble averages the candidates that are not clearly worse than the best one there (within
one paired standard error): a weak member would drag the mean down (OSULeaf's 1-NN, 0.55 beside
the CNN's 1.0). The ensemble is chosen when it too is within one standard error of the best
candidate: nothing on those rows tells them apart, and its expected loss is at most its members'
mean (the loss is convex). Otherwise the highest accuracy wins, then the higher macro F1, then a
network over the baseline, then the lower log loss. Log loss is no fair judge of the baseline
(1-NN's probabilities are 0 or 1), so it takes a tie from no network. bench/selection_rules.py
and bench/small_data.py choose on one half of the rows and score on the other.
"""

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from tasks.infra.fingerprints import digest
from tasks.infra.vocabulary import BASELINE, CLASSICAL_FAMILIES, ENSEMBLE
from tasks.types import Dataset, Split

SELECTED_BY = "val/accuracy"  # the metric that chooses, as logged in every candidate run
MEMBER_MARGIN = 1.0  # an ensemble member trails the best candidate by at most this many standard errors
BELOW_MAJORITY = "below the majority-class rate"


@dataclass
class EnsembleConfig:
    members: list = field(default_factory=list)  # the members' TrainConfigs
    family: str = ENSEMBLE


@dataclass
class Ensemble:
    """The mean of the candidates' probabilities (the networks' and the baseline's), served as one model."""

    members: list  # the candidates it averages: TrainedModel, TrainedBaseline
    family: str = ENSEMBLE
    history: list[dict] = field(default_factory=list)
    fit_seconds: float = 0.0

    @property
    def started_at(self) -> float:
        return min(m.started_at for m in self.members)

    @property
    def finished_at(self) -> float:
        return max(m.finished_at for m in self.members)

    @property
    def config(self) -> EnsembleConfig:
        return EnsembleConfig(members=[m.config for m in self.members])

    @property
    def training_key(self) -> str:
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
    selected_by: str  # val/accuracy, or cv5/accuracy: chosen on five folds' out-of-fold figures
    scores: dict[str, dict[str, float]]  # family -> val/accuracy, val/f1_macro, val/loss (the kept model)
    majority_rate: float  # accuracy of always answering the training rows' most common class
    members: list[str] = field(default_factory=list)  # the families the ensemble averages, if one was scored
    notes: list[str] = field(default_factory=list)  # plain lines for the run's summary
    folds: dict[str, list[float]] = field(default_factory=dict)  # cross-validated: family -> each fold's accuracy

    @property
    def value(self) -> float:
        return self.scores[self.family][SELECTED_BY]

    def flags(self, family: str) -> list[str]:
        below = self.scores[family][SELECTED_BY] < self.majority_rate
        return [BELOW_MAJORITY] if below else []

    def as_dict(self) -> dict:
        return asdict(self)


def choose_on_validation(models: list, dataset: Dataset, split: Split, ensemble: bool = False) -> Choice:
    """Score every candidate (and, when `ensemble`, the ensemble of those close to the best) on
    the validation rows and pick one."""
    rows = dataset.frame.iloc[split.val]
    probabilities = {model.family: model.predict_proba(rows) for model in models}
    y_true, num_classes = dataset.class_indices(split.val), len(dataset.classes)
    return choose_among(probabilities, y_true, num_classes, majority_rate(dataset, split), ensemble)


def choose_among(
    probabilities: dict[str, np.ndarray], y_true: np.ndarray, num_classes: int, majority: float, ensemble: bool
) -> Choice:
    """The rule of every choice: `probabilities` maps family -> (rows, classes) on the rows that
    choose; with `ensemble`, the ensemble of those close to the best joins them (and the dict)."""
    members = add_ensemble(probabilities, y_true) if ensemble else []
    scores = {family: scores_of(p, y_true, num_classes) for family, p in probabilities.items()}
    families = list(probabilities)
    close = [families[i] for i in close_to_best([p.argmax(axis=1) == y_true for p in probabilities.values()])]
    return choose(scores, majority, members, ensemble_close=ENSEMBLE in close)


def add_ensemble(probabilities: dict[str, np.ndarray], y_true: np.ndarray) -> list[str]:
    """Adds ENSEMBLE to `probabilities` (family -> (rows, classes)): the mean of the candidates
    close to the best on these rows; returns its member families, empty (and adds nothing) when
    fewer than two are."""
    kept = close_to_best([p.argmax(axis=1) == y_true for p in probabilities.values()])
    members = [list(probabilities)[i] for i in kept] if len(kept) >= 2 else []
    if members:
        probabilities[ENSEMBLE] = np.mean([probabilities[f] for f in members], axis=0)
    return members


def scores_of(probabilities: np.ndarray, y_true: np.ndarray, num_classes: int) -> dict[str, float]:
    """What `choose` compares: accuracy, macro F1 and log loss of class probabilities."""
    from sklearn.metrics import accuracy_score, f1_score, log_loss

    y_pred, labels = probabilities.argmax(axis=1), list(range(num_classes))
    clipped = np.clip(probabilities, 1e-7, 1.0)
    clipped /= clipped.sum(axis=1, keepdims=True)  # log_loss wants rows that sum to one
    return {
        "val/accuracy": float(accuracy_score(y_true, y_pred)),
        "val/f1_macro": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "val/loss": float(log_loss(y_true, clipped, labels=labels)),
    }


def close_to_best(correct: list[np.ndarray]) -> list[int]:
    """Indices of the candidates whose validation accuracy trails the best one's by at most
    MEMBER_MARGIN standard errors of the paired difference; `correct` holds each one's right/wrong rows."""
    best = max(correct, key=np.mean).astype(float)
    kept = []
    for index, right in enumerate(correct):
        gap = best - right
        error = gap.std(ddof=1) / np.sqrt(len(gap)) if len(gap) > 1 else 0.0
        if gap.mean() <= MEMBER_MARGIN * error:
            kept.append(index)
    return kept


def majority_rate(dataset: Dataset, split: Split) -> float:
    """Validation accuracy of a model that always answers the most common training class."""
    train = dataset.class_indices(split.train)
    return float(np.mean(dataset.class_indices(split.val) == np.bincount(train).argmax()))


def choose(
    scores: dict[str, dict[str, float]], majority: float, members: list[str] | None = None, ensemble_close: bool = False
) -> Choice:
    """The best candidate; `scores` maps family -> scores_of(...). `ensemble_close`: the ensemble
    trails the best candidate by at most one standard error, and is chosen."""

    def key(family: str) -> tuple:
        s = scores[family]
        return (
            ensemble_close and family == ENSEMBLE,
            s["val/accuracy"],
            s["val/f1_macro"],
            family == ENSEMBLE,
            family != BASELINE,
            -s["val/loss"],
        )

    best = max(scores, key=key)
    choice = Choice(best, SELECTED_BY, scores, majority, list(members or []))
    choice.notes = _notes(choice)
    return choice


def _notes(choice: Choice) -> list[str]:
    notes = []
    for family in choice.scores:
        if choice.flags(family):
            accuracy = choice.scores[family][SELECTED_BY]
            notes.append(
                f"{family} ends below the majority-class rate: validation accuracy {accuracy:.4f} "
                f"< {choice.majority_rate:.4f}"
            )
    best = max(choice.scores, key=lambda f: choice.scores[f][SELECTED_BY])
    if choice.family == ENSEMBLE and choice.value < choice.scores[best][SELECTED_BY]:
        notes.append(
            f"The ensemble ({choice.value:.4f}) is within one standard error of {best} "
            f"({choice.scores[best][SELECTED_BY]:.4f}): nothing here tells them apart, and the ensemble is chosen."
        )
    if BASELINE in choice.scores and len(choice.scores) > 1:
        baseline = choice.scores[BASELINE][SELECTED_BY]
        networks = {f: s[SELECTED_BY] for f, s in choice.scores.items() if f not in (*CLASSICAL_FAMILIES, ENSEMBLE)}
        if choice.family == BASELINE and networks:
            best = max(networks, key=networks.get)
            notes.append(
                f"No network beats the classical baseline on the validation rows "
                f"(baseline {baseline:.4f}, best network {best} {networks[best]:.4f}): the baseline is registered."
            )
    return notes
