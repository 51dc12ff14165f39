"""The classical candidates, fitted once with scikit-learn on the networks' rows and inputs: the
baseline that competes in every run, and MiniRocket (models/rocket.py) in sequence runs.

The baseline: for text, TF-IDF word n-grams (sublinear tf) and a logistic regression; for
images, an RBF support vector machine on the scaled pixels (a linear model past
`max_kernel_rows`, where the kernel's cost grows with the square of the rows); for sequences,
1-nearest-neighbour on the z-normalised series. Each reads its inputs through
`models.preprocessing.baseline_inputs`, as the served model does, so training and serving never drift.
"""

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tasks.infra.vocabulary import BASELINE, ROCKET
from tasks.training.caching import training_key
from tasks.types import BaselineConfig, Dataset, Split


@dataclass
class TrainedBaseline:
    family: str
    estimator: object  # a fitted scikit-learn classifier with predict_proba, over class indices
    preprocessing: dict  # raw rows -> inputs, as the served model will do it
    config: BaselineConfig
    description: str  # what it is, in words: "TF-IDF 1-2 grams + LogisticRegression(C=10)"
    fit_seconds: float
    training_key: str = ""
    history: list[dict] = field(default_factory=list)  # no epochs: a single fit
    started_at: float = 0.0  # when the fit began and ended (Unix time): its MLflow run's times
    finished_at: float = 0.0

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        from models.networks import estimator_probabilities
        from models.preprocessing import baseline_inputs

        x = baseline_inputs(frame, self.preprocessing)
        return estimator_probabilities(self.estimator, x, len(self.preprocessing["classes"]))

    def run_params(self) -> dict:
        return {"family": self.family, "seed": self.config.seed, "estimator": self.description, **self.config.settings}


def build_estimator(modality: str, rows: int, settings: dict, seed: int, family: str = BASELINE):
    """(estimator, description) for a modality's classical baseline, or MiniRocket."""
    from sklearn.linear_model import LogisticRegression

    if family == ROCKET:
        from models.rocket import RocketClassifier

        kernels = settings.get("kernels", 10_000)
        channels = settings["channels"]
        return RocketClassifier(kernels, channels, seed), f"MiniRocket({kernels} kernels) + RidgeClassifierCV"

    if modality == "text":
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import make_pipeline

        low, high = settings.get("ngrams", (1, 2))
        c = settings.get("C", 10.0)
        vectoriser = TfidfVectorizer(ngram_range=(low, high), sublinear_tf=True, min_df=1)
        description = f"TF-IDF {low}-{high} grams + LogisticRegression(C={c:g})"
        return make_pipeline(vectoriser, LogisticRegression(C=c, max_iter=2000)), description
    if modality == "audio":
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        c = settings.get("C", 10.0)
        svc = _svc_with_probabilities(c)
        description = f"SVC(rbf, C={c:g}) on each log-mel band's mean and spread while sounding"
        return make_pipeline(StandardScaler(), svc), description
    if modality == "image":
        c = settings.get("C", 10.0)
        if rows <= settings.get("max_kernel_rows", 10_000):
            return _svc_with_probabilities(c), f"SVC(rbf, C={c:g}) on pixels"
        return LogisticRegression(C=c, max_iter=1000), f"LogisticRegression(C={c:g}) on pixels"
    if modality == "sequence":
        from sklearn.neighbors import KNeighborsClassifier

        k = settings.get("neighbours", 1)
        return KNeighborsClassifier(n_neighbors=k), f"{k}-nearest-neighbour (Euclidean) on z-normalised series"
    raise ValueError(f"unknown modality {modality!r}")


def _svc_with_probabilities(c: float):
    """An RBF SVC whose scores become probabilities by Platt's sigmoid, fitted on 5 folds' held-out
    scores, then the SVC refitted on every row: what SVC(probability=True) did inside libsvm
    (deprecated in scikit-learn 1.9)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC

    return CalibratedClassifierCV(SVC(C=c, gamma="scale"), method="sigmoid", cv=5, ensemble=False)


def _platt_folds(estimator, y) -> None:
    """A calibrated SVC's folds: 5, or as many as the rarest class has rows (a fold of a small set's
    cross-validated choice); at least 2 (the validation gate asks for 5 rows a class)."""
    from collections import Counter

    from sklearn.calibration import CalibratedClassifierCV

    for step in [s for _, s in getattr(estimator, "steps", [])] or [estimator]:
        if isinstance(step, CalibratedClassifierCV):
            step.set_params(cv=max(2, min(5, min(Counter(y.tolist()).values()))))


def fit_baseline(dataset: Dataset, split: Split, config: BaselineConfig) -> TrainedBaseline:
    """Fit a scikit-learn candidate (the baseline, or MiniRocket) on the networks' training rows."""
    from models.preprocessing import baseline_inputs

    info = dataset.preprocessing()  # no tokenizer: the vectoriser learns its own n-grams
    if dataset.modality == "audio":  # the log-mel bands' statistics, as the networks have them
        from tasks.training.features import fit_preprocessing

        info = fit_preprocessing(dataset, split)
    settings = config.settings | {"channels": info.get("channels", 1)}  # MiniRocket unflattens the series
    estimator, description = build_estimator(dataset.modality, len(split.train), settings, config.seed, config.family)
    y = dataset.class_indices(split.train)
    _platt_folds(estimator, y)
    started, started_at = time.perf_counter(), time.time()
    estimator.fit(baseline_inputs(dataset.frame.iloc[split.train], info), y)
    return TrainedBaseline(
        family=config.family,
        estimator=estimator,
        preprocessing=info,
        config=config,
        description=description,
        fit_seconds=time.perf_counter() - started,
        started_at=started_at,
        finished_at=time.time(),
        training_key=training_key(dataset, split, config),
    )
