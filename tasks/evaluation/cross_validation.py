"""Choose by k-fold cross-validation when the validation rows are few.

On 5 validation rows every candidate scores 0, 0.2, ... 1.0: the choice is a coin toss. Below
`selection.cv_below` validation rows a run instead pools the training and validation rows,
splits them into stratified, seeded folds, trains every candidate once per fold and chooses on
the out-of-fold figures (the ensemble rule too, on the out-of-fold probabilities). The chosen
candidates are then refitted on all training and validation rows, the networks for the median
of their folds' best epochs, and the refit is what the test rows judge and the registry keeps. A
network's out-of-fold figure is that of the same recipe: each fold's model after that many
epochs, not at the epoch its own held-out rows found best. The test rows are in no fold. Each
fold is a Split like any other, so a fold's fit is a cached, resumable candidate
(tasks/training), trained here or on Dask.
"""

from dataclasses import dataclass, replace

import numpy as np

from tasks.evaluation.selection import Choice, choose_among
from tasks.infra.errors import MlpipeError
from tasks.types import Dataset, Split, TrainConfig, plain


@dataclass
class Folds:
    """The folds of a cross-validated choice: each one's train and val rows, and the test rows as they were."""

    splits: list[Split]
    note: str = ""  # why there are fewer folds than asked for; empty if none

    @property
    def selected_by(self) -> str:
        return f"cv{len(self.splits)}/accuracy"


def uses_cv(split: Split, cv_below: int) -> bool:
    return len(split.val) < cv_below


def make_folds(dataset: Dataset, split: Split, folds: int, seed: int) -> Folds:
    """Stratified folds over the training and validation rows, seeded by the run's seed; fewer
    folds than asked for when a class has fewer rows than that (said in the note)."""
    from sklearn.model_selection import StratifiedKFold

    rows = np.sort(np.concatenate([split.train, split.val]))
    labels = dataset.frame[dataset.label_column].to_numpy()[rows]
    values, counts = np.unique(labels, return_counts=True)
    k, note = min(folds, int(counts.min())), ""
    if k < folds:
        rare = plain(values[counts.argmin()])
        note = f"{k} folds, not {folds}: class {rare!r} has {counts.min()} training and validation rows"
    if k < 2:
        raise MlpipeError(f"cross-validation: {note}; each fold needs a row of every class")
    splitter = StratifiedKFold(k, shuffle=True, random_state=seed)
    splits = [
        Split(rows[train], rows[val], split.test, {**split.seeds, "fold": i}, split.fractions)
        for i, (train, val) in enumerate(splitter.split(rows, labels))
    ]
    return Folds(splits, note)


def refit_split(split: Split) -> Split:
    """All training and validation rows to train on, none to validate on; the test rows as they were."""
    rows = np.sort(np.concatenate([split.train, split.val]))
    return Split(rows, np.array([], dtype=rows.dtype), split.test, split.seeds, split.fractions)


def refit_config(config: TrainConfig, fold_models: list) -> TrainConfig:
    """A network's refit: the median of its folds' best epochs, on the schedule the folds had."""
    return replace(config, refit_epochs=refit_epochs(fold_models))


def refit_epochs(fold_models: list) -> int:
    return int(np.ceil(np.median([m.best_epoch + 1 for m in fold_models])))


def choose_by_cv(fold_models: dict[str, list], dataset: Dataset, folds: Folds, ensemble: bool = False) -> Choice:
    """`fold_models`: family -> its model of each fold, in the folds' order. Every figure is
    out-of-fold: each row scored by the model that did not train on it."""
    y = np.concatenate([dataset.class_indices(f.val) for f in folds.splits])
    ends = np.cumsum([len(f.val) for f in folds.splits])[:-1]  # where each fold's rows end in `y`
    probabilities = {family: _out_of_fold(models, dataset, folds) for family, models in fold_models.items()}
    choice = choose_among(probabilities, y, len(dataset.classes), _majority_rate(dataset, folds), ensemble)
    per_fold = {}
    for family, p in probabilities.items():
        per_fold[family] = [float(right.mean()) for right in np.split(p.argmax(axis=1) == y, ends)]
        choice.scores[family]["val/accuracy_sd"] = float(np.std(per_fold[family], ddof=1))
    choice.selected_by, choice.folds = folds.selected_by, per_fold
    if folds.note:
        choice.notes.append(f"cross-validation: {folds.note}")
    return choice


def _out_of_fold(models: list, dataset: Dataset, folds: Folds) -> np.ndarray:
    """Each fold's rows scored by the model of that fold, in the folds' order. A network is scored
    as its refit will be trained: after the epochs of the refit (the folds' median best epoch, or
    the fold's last epoch if it stopped before), not at its own best epoch, which its held-out
    rows chose: on 20 rows a noisy curve's best epoch is partly luck, which a classical candidate,
    scored as it is, never gets."""
    networks = all(getattr(m, "held_out", None) is not None for m in models)
    last = refit_epochs(models) - 1 if networks else 0
    scored = []
    for model, fold in zip(models, folds.splits, strict=True):
        if networks:
            scored.append(model.held_out[min(last, len(model.held_out) - 1)].astype(np.float64))
        else:
            scored.append(model.predict_proba(dataset.frame.iloc[fold.val]))
    return np.concatenate(scored)


def _majority_rate(dataset: Dataset, folds: Folds) -> float:
    """Out-of-fold accuracy of always answering the most common class of each fold's training rows."""
    hits = [dataset.class_indices(f.val) == np.bincount(dataset.class_indices(f.train)).argmax() for f in folds.splits]
    return float(np.mean(np.concatenate(hits)))
