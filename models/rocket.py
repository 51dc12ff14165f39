"""MiniRocket (Dempster et al. 2021, from aeon): thousands of fixed random convolutions of a
series, pooled into features, then a ridge classifier. On small time-series data sets it is the
classifier a practitioner reaches for first, and it trains in seconds.

Ridge gives scores, not probabilities; the ensemble averages probabilities. The scores are
turned into them by a softmax whose temperature is fitted on the ridge's own leave-one-out scores
of the training rows (RidgeClassifierCV keeps them), so no validation row is spent on it.
"""

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

MIN_LENGTH = 9  # MiniRocket's shortest series: its kernels are 9 long; shorter ones are zero-padded
ALPHAS = np.logspace(-3, 3, 10)  # ridge penalties, chosen by leave-one-out on the training rows


class RocketClassifier(ClassifierMixin, BaseEstimator):
    """Takes (N, length, channels) series, or (N, length * channels) with `channels` set."""

    def __init__(self, kernels: int = 10_000, channels: int = 1, seed: int = 0) -> None:
        self.kernels = kernels
        self.channels = channels
        self.seed = seed

    def fit(self, x: np.ndarray, y: np.ndarray) -> "RocketClassifier":
        from aeon.transformations.collection.convolution_based import MiniRocket
        from sklearn.linear_model import RidgeClassifierCV
        from sklearn.preprocessing import StandardScaler

        series = self._series(x)
        self.transform_ = MiniRocket(n_kernels=self.kernels, random_state=self.seed).fit(series)
        features = self.transform_.transform(series)
        self.scaler_ = StandardScaler().fit(features)
        features = self.scaler_.transform(features)
        self.ridge_ = RidgeClassifierCV(alphas=ALPHAS).fit(features, y)
        self.classes_ = self.ridge_.classes_
        # With a scoring, RidgeClassifierCV keeps each row's leave-one-out scores (else their squared errors).
        held_out = RidgeClassifierCV(alphas=[self.ridge_.alpha_], scoring="accuracy", store_cv_results=True)
        held_out.fit(features, y)
        self.temperature_ = _temperature(self._two_sided(held_out.cv_results_[:, :, 0]), y, self.classes_)
        return self

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        features = self.scaler_.transform(self.transform_.transform(self._series(x)))
        return self._two_sided(self.ridge_.decision_function(features))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.classes_[self.decision_function(x).argmax(axis=1)]

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return _softmax(self.decision_function(x) * self.temperature_)

    def _series(self, x: np.ndarray) -> np.ndarray:
        """(N, channels, length) float64, as aeon takes them, zero-padded to MIN_LENGTH."""
        x = np.asarray(x, dtype=np.float64)
        series = x.reshape(len(x), -1, self.channels).transpose(0, 2, 1) if x.ndim == 2 else x.transpose(0, 2, 1)
        short = MIN_LENGTH - series.shape[2]
        return np.pad(series, ((0, 0), (0, 0), (0, short))) if short > 0 else np.ascontiguousarray(series)

    @staticmethod
    def _two_sided(scores: np.ndarray) -> np.ndarray:
        """Ridge's one score column of two classes as a column per class."""
        scores = scores.reshape(len(scores), -1)
        return np.column_stack([-scores[:, 0], scores[:, 0]]) if scores.shape[1] == 1 else scores


def _softmax(scores: np.ndarray) -> np.ndarray:
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _temperature(scores: np.ndarray, y: np.ndarray, classes: np.ndarray) -> float:
    """The softmax temperature with the lowest log loss on the leave-one-out scores."""
    from scipy.optimize import minimize_scalar

    rows = np.searchsorted(classes, y)

    def loss(log_t: float) -> float:
        p = _softmax(scores * np.exp(log_t))
        return -float(np.mean(np.log(np.clip(p[np.arange(len(rows)), rows], 1e-12, None))))

    return float(np.exp(minimize_scalar(loss, bounds=(-3, 3), method="bounded").x))
