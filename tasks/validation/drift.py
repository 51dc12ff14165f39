"""Drift of a new data version against the one the current champion was trained on.

At registration the champion's data is summarised in a small profile (label proportions,
per-feature quantile bins, text lengths and vocabulary) kept with the model in MLflow; a later
run compares its data with that profile, so the old data need not be restored to check.
"""

import re

import numpy as np
import pandas as pd

from tasks.infra.params import DriftParams
from tasks.types import Dataset
from tasks.validation.row_checks import CheckResult

BINS = 10
VOCABULARY = 20_000  # most frequent words kept in a text profile
_WORDS = re.compile(r"\w+")


def profile(dataset: Dataset, predicted: pd.Series | None = None) -> dict:
    """The data set's summary; with `predicted` (the model's labels of the test rows) their class
    mix too, which monitoring compares a batch's predictions with."""
    summary = {
        "data_hash": dataset.data_hash,
        "rows": len(dataset.frame),
        "labels": shares(dataset.frame[dataset.label_column]),
        "columns": list(dataset.feature_columns),
    }
    if predicted is not None:
        summary["predictions"] = shares(predicted)
    if dataset.modality == "audio":  # each clip's duration, loudness and band energies, not its samples
        info = dataset.preprocessing()
        summary["audio"] = {k: info[k] for k in ("sample_rate", "clip_samples", "align", "path_column")}
        summary["audio"]["feature_columns"] = info["feature_columns"]
        sounds = audio_summary(dataset.frame, summary["audio"])
        summary["columns"] = list(sounds.columns)
        summary["features"] = {c: _quantile_bins(sounds[c].to_numpy(dtype=np.float64)) for c in sounds.columns}
    elif dataset.modality == "text":
        texts = dataset.frame[dataset.feature_columns[0]]
        summary["text_length"] = _quantile_bins(texts.str.len().to_numpy(dtype=np.float64))
        words = texts.str.lower().str.findall(_WORDS).explode().dropna()
        summary["vocabulary"] = words.value_counts().index[:VOCABULARY].tolist()
    else:
        values = dataset.frame[dataset.feature_columns].to_numpy(dtype=np.float64)
        summary["features"] = {c: _quantile_bins(values[:, i]) for i, c in enumerate(dataset.feature_columns)}
    return summary


def compare(reference: dict, dataset: Dataset, limits: DriftParams | None = None) -> list[CheckResult]:
    limits = limits or DriftParams()
    current = shares(dataset.frame[dataset.label_column])
    checks = [share_shift("label_shift", reference["labels"], current, limits.label_shift, "the champion's data")]
    frame = dataset.frame
    if "audio" in reference and dataset.audio:  # the files under the name the champion's data gave them
        frame = frame.rename(columns={dataset.audio["path_column"]: reference["audio"]["path_column"]})
    return checks + feature_drift(reference, frame, dataset.feature_columns, limits)


def shares(values: pd.Series) -> dict[str, float]:
    """Each class's share of the rows, classes as strings (as a profile keeps them)."""
    return values.astype(str).value_counts(normalize=True).to_dict()


def share_shift(name: str, reference: dict, current: dict, limit: float, of: str, what: str = "class") -> CheckResult:
    """The largest change in any class's share between two class mixes."""
    shifts = {c: current.get(c, 0.0) - reference.get(c, 0.0) for c in set(reference) | set(current)}
    worst = max(shifts, key=lambda c: abs(shifts[c]))
    return _check(name, abs(shifts[worst]), limit, f"{what} {worst!r} share moved {shifts[worst]:+.1%} from {of}")


def feature_drift(reference: dict, frame: pd.DataFrame, columns: list[str], limits) -> list[CheckResult]:
    """The features of `frame` against the profile: text length and new words for text, else the
    worst feature's PSI (for sound, of each clip's summary). `limits` has feature_psi, text_length_psi and oov_rate."""
    figures = FeatureDrift(reference, columns, limits)
    figures.add(frame)
    return figures.checks()


CLIPS_AT_ONCE = 1024  # sound clips whose waveforms drift's summary holds at a time


class FeatureDrift:
    """feature_drift's figures gathered over a batch's chunks of rows: counts per profile bin, and
    of words, so a file of any length is compared in one pass with flat memory."""

    def __init__(self, reference: dict, columns: list[str], limits):
        self.reference, self.columns, self.limits = reference, columns, limits
        self.vocabulary = set(reference.get("vocabulary", ()))
        self.bins: dict[str, np.ndarray] = {}  # column (or "text_length") -> rows in each of its bins
        self.words = self.new_words = 0

    def add(self, frame: pd.DataFrame) -> None:
        columns = self.columns
        if "audio" in self.reference:  # a slice of clips at a time: their waveforms are stacked
            for start in range(0, len(frame), CLIPS_AT_ONCE):
                summary = audio_summary(frame.iloc[start : start + CLIPS_AT_ONCE], self.reference["audio"])
                self._add(summary, list(summary.columns))
            return
        self._add(frame, columns)

    def _add(self, frame: pd.DataFrame, columns: list[str]) -> None:
        if not columns:
            return
        if "text_length" in self.reference:
            texts = frame[columns[0]].astype(str)
            self._count("text_length", self.reference["text_length"], texts.str.len().to_numpy(dtype=np.float64))
            words = texts.str.lower().str.findall(_WORDS).explode().dropna()
            self.words += len(words)
            self.new_words += int((~words.isin(self.vocabulary)).sum())
            return
        for column in columns:
            if column in self.reference.get("features", {}):
                values = frame[column].to_numpy(dtype=np.float64)
                self._count(column, self.reference["features"][column], values)

    def _count(self, key: str, bins: dict, values: np.ndarray) -> None:
        counts = _counts(np.asarray(bins["edges"]), values[np.isfinite(values)])
        self.bins[key] = self.bins[key] + counts if key in self.bins else counts

    def checks(self) -> list[CheckResult]:
        if "text_length" in self.reference:
            if "text_length" not in self.bins:
                return []
            psi = _psi(self.reference["text_length"], self.bins["text_length"])
            oov = self.new_words / self.words if self.words else 0.0
            return [
                _check("text_length_psi", psi, self.limits.text_length_psi, f"text length PSI {psi:.3f}"),
                _check("oov_rate", oov, self.limits.oov_rate, f"{oov:.1%} of the words are new"),
            ]
        if not self.bins:
            return []
        scores = {c: _psi(self.reference["features"][c], counts) for c, counts in self.bins.items()}
        column = max(scores, key=scores.get)
        detail = f"largest PSI {scores[column]:.3f} in {column!r}"
        return [_check("feature_psi", scores[column], self.limits.feature_psi, detail)]


def audio_summary(frame: pd.DataFrame, info: dict) -> pd.DataFrame:
    """What drift compares of sound clips: duration and loudness as recorded, and each log-mel
    band's mean energy with the clips read in the reference's format (`info`: its sample rate,
    length and path column) from their files, or served arrays of samples."""
    from models.audio import band_energies
    from models.preprocessing import AUDIO_COLUMN
    from models.waveforms import from_arrays, read_sound, waveform
    from tasks.data.sound_files import DURATION, RMS, clip_figures

    if info["path_column"] in frame.columns:  # absolute paths: a data set's, or a served table's once confined
        clips = [read_sound(path) for path in frame[info["path_column"]]]
        waves = np.stack([waveform(samples, rate, info) for samples, rate in clips]) if clips else np.zeros((0, 1))
        figures = pd.DataFrame([clip_figures(samples, rate) for samples, rate in clips], columns=[DURATION, RMS])
    else:
        waves = from_arrays(frame[AUDIO_COLUMN].tolist(), info)
        lengths = [max(np.shape(v)) for v in frame[AUDIO_COLUMN]]
        rms = np.sqrt(np.mean(np.square(waves, dtype=np.float64), axis=1))
        figures = pd.DataFrame({DURATION: np.asarray(lengths) / info["sample_rate"], RMS: rms})
    bands = band_energies(waves.astype(np.float32), info["sample_rate"])
    return pd.concat([figures, pd.DataFrame(bands, columns=[f"band_{i}" for i in range(bands.shape[1])])], axis=1)


def _check(name: str, value: float, limit: float, detail: str) -> CheckResult:
    ok = value <= limit
    return CheckResult(f"drift.{name}", ok, round(float(value), 6), detail + ("" if ok else f", above {limit}"))


def _quantile_bins(values: np.ndarray) -> dict:
    """Bin edges at the reference's deciles and the share of rows in each bin."""
    values = values[np.isfinite(values)]
    edges = np.unique(np.quantile(values, np.linspace(0, 1, BINS + 1))) if len(values) else np.array([0.0])
    return {"edges": edges.tolist(), "shares": _shares(edges, values).tolist()}


def _counts(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    # Interior edges split the line into len(edges)+1 bins, the outer two for values beyond the range.
    return np.bincount(np.searchsorted(edges[1:-1], values, side="right"), minlength=max(len(edges) - 1, 1))


def _shares(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    return _counts(edges, values) / max(len(values), 1)


def _psi(reference: dict, counts: np.ndarray) -> float:
    """Population stability index of the rows in each of the reference's bins: sum over bins of
    (new - old) * ln(new / old)."""
    expected = np.asarray(reference["shares"])
    actual = counts / max(counts.sum(), 1)
    expected, actual = np.clip(expected, 1e-4, None), np.clip(actual, 1e-4, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))
