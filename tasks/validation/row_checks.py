"""Checks across rows and parts of a data set, which single-column expectations cannot express:
duplicates, train/test leakage, rare classes, classes only the test file has, values that are
not finite numbers, huge or blank texts.

Each runs on the whole table in vectorised pandas/numpy, so they stay cheap at a million rows.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tasks.infra.params import ChecksParams
from tasks.types import Dataset, plain


@dataclass
class CheckResult:
    name: str
    success: bool
    observed: object  # the figure the check is decided on
    message: str  # one line a person understands, whether it passed or not

    def as_dict(self) -> dict:
        return {"check": self.name, "success": self.success, "observed": self.observed, "message": self.message}


def run_checks(dataset: Dataset, limits: ChecksParams | None = None) -> list[CheckResult]:
    limits = limits or ChecksParams()
    checks = [_class_counts(dataset, limits.min_class_count)]
    if dataset.test_positions is not None:
        checks.append(_test_only_classes(dataset))
    if dataset.modality == "text":
        checks += [
            _text_lengths(dataset, limits.max_text_chars),
            _blank_texts(dataset, limits.max_blank_fraction),
        ]
    else:
        numeric = _numeric_features(dataset)
        checks.append(numeric)
        if numeric.success:
            checks.append(_finite_values(dataset))
            if dataset.modality == "image":
                checks.append(_pixel_range(dataset))
    hashes = _row_hashes(dataset)
    checks.append(_duplicates(dataset, hashes, limits.max_duplicate_fraction))
    if dataset.test_positions is not None:
        checks.append(_leakage(dataset, hashes, limits.max_leakage_fraction))
    return checks


def _row_hashes(dataset: Dataset) -> np.ndarray:
    """One 64-bit hash per row's features, so rows compare as integers. Numeric columns are
    mixed in one at a time (5x faster than pandas' row hashing on a million 64-column rows, and
    never a copy of the whole table)."""
    frame, columns = dataset.frame, dataset.feature_columns
    if not all(pd.api.types.is_numeric_dtype(frame[c]) for c in columns):
        return pd.util.hash_pandas_object(frame[columns], index=False).to_numpy()
    hashes = np.zeros(len(frame), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for column in columns:
            bits = np.ascontiguousarray(frame[column].to_numpy(dtype=np.float64)).view(np.uint64)
            hashes = (hashes ^ _mix(bits)) * np.uint64(0x100000001B3)
    return hashes


def _mix(bits: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: nearby values get unrelated hashes."""
    bits = (bits ^ (bits >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    bits = (bits ^ (bits >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return bits ^ (bits >> np.uint64(31))


def _class_counts(dataset: Dataset, minimum: int) -> CheckResult:
    labels = dataset.frame[dataset.label_column]
    if dataset.test_positions is not None:
        labels = labels.drop(labels.index[dataset.test_positions])
    counts = labels.value_counts()
    rarest, count = plain(counts.index[-1]), int(counts.iloc[-1])
    ok = count >= minimum
    detail = f"class {rarest!r} has {count} training samples" + ("" if ok else f", fewer than {minimum}")
    return CheckResult("class_counts", ok, {str(k): int(v) for k, v in counts.items()}, detail)


def _text_lengths(dataset: Dataset, maximum: int) -> CheckResult:
    column = dataset.feature_columns[0]
    lengths = dataset.frame[column].str.len()
    longest = int(lengths.max())
    ok = longest <= maximum
    row = int(lengths.to_numpy().argmax())
    detail = f"longest text in {column!r} has {longest:,} characters (row {row})"
    return CheckResult("text_lengths", ok, longest, detail + ("" if ok else f", more than {maximum:,}"))


def _blank_texts(dataset: Dataset, maximum: float) -> CheckResult:
    """A text of whitespace only has no token: the network would see padding alone."""
    column = dataset.feature_columns[0]
    blank = dataset.frame[column].fillna("").astype(str).str.strip().eq("").to_numpy()
    count = int(blank.sum())
    ok = count <= maximum * len(blank)
    detail = f"{count} texts in {column!r} are empty or whitespace only"
    if count:
        detail += f" (first at row {int(blank.argmax())})"
    if not ok:
        detail += f", more than {maximum:.1%}: remove them or give them words (or raise max_blank_fraction)"
    return CheckResult("blank_texts", ok, count, detail)


def _test_only_classes(dataset: Dataset) -> CheckResult:
    """A class that only the test file has cannot be learnt, and would be scored as always wrong."""
    labels = dataset.frame[dataset.label_column]
    test = labels.iloc[dataset.test_positions]
    train = labels.drop(labels.index[dataset.test_positions])
    unseen = sorted({plain(v) for v in set(test.unique()) - set(train.unique())}, key=str)
    detail = f"{len(unseen)} classes occur only in the test file"
    if unseen:
        shown = ", ".join(repr(v) for v in unseen[:5]) + (", ..." if len(unseen) > 5 else "")
        rows = int(test.isin(unseen).sum())
        detail += f": {shown} ({rows} test rows); the training file has none of them"
    return CheckResult("test_only_classes", not unseen, [str(v) for v in unseen], detail)


def _numeric_features(dataset: Dataset) -> CheckResult:
    frame, columns = dataset.frame, dataset.feature_columns
    bad = [c for c in columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if not bad:
        return CheckResult("numeric_features", True, 0, f"all {len(columns)} feature columns are numeric")
    column = bad[0]
    values = pd.to_numeric(frame[column], errors="coerce")
    example = frame[column][values.isna() & frame[column].notna()].head(1).tolist()
    detail = f"{len(bad)} feature columns are not numeric, e.g. {column!r} holds {example[0]!r}" if example else ""
    return CheckResult("numeric_features", False, bad[:10], detail or f"column {column!r} is not numeric")


def _finite_values(dataset: Dataset) -> CheckResult:
    """Column by column (integer columns cannot hold NaN or infinity), never a copy of the table."""
    columns = [c for c in dataset.feature_columns if pd.api.types.is_float_dtype(dataset.frame[c])]
    nan = inf = 0
    bad_rows = np.zeros(len(dataset.frame), dtype=bool)
    first = None  # (row, column) of the first value that is not finite, in row order
    for column in columns:
        values = dataset.frame[column].to_numpy()
        is_nan, is_inf = np.isnan(values), np.isinf(values)
        bad = is_nan | is_inf
        if bad.any():
            nan, inf = nan + int(is_nan.sum()), inf + int(is_inf.sum())
            row = int(bad.argmax())
            first = min(first or (row, column), (row, column), key=lambda found: found[0])
            bad_rows |= bad
    if first is None:
        return CheckResult("finite_values", True, 0, "no NaN or infinite feature values")
    where = f"first at row {first[0]}, column {first[1]!r}"
    return CheckResult(
        "finite_values",
        False,
        {"nan": nan, "inf": inf},
        f"{nan} NaN and {inf} infinite feature values in {int(bad_rows.sum())} rows ({where})",
    )


def _pixel_range(dataset: Dataset) -> CheckResult:
    lows = [float(dataset.frame[c].min()) for c in dataset.feature_columns]
    highs = [float(dataset.frame[c].max()) for c in dataset.feature_columns]
    low, high = min(lows), max(highs)
    ok = low >= 0 and high <= 255
    detail = f"pixel values span {low:g}..{high:g}" + ("" if ok else ", outside 0..255")
    return CheckResult("pixel_range", ok, [low, high], detail)


def _duplicates(dataset: Dataset, hashes: np.ndarray, maximum: float) -> CheckResult:
    keys = pd.DataFrame({"features": hashes, "label": dataset.frame[dataset.label_column].to_numpy()})
    count = int(keys.duplicated().sum())
    fraction = count / len(keys)
    ok = fraction <= maximum
    detail = f"{count} duplicated rows ({fraction:.1%} of {len(keys)})"
    return CheckResult("duplicates", ok, round(fraction, 6), detail + ("" if ok else f", more than {maximum:.1%}"))


def _leakage(dataset: Dataset, hashes: np.ndarray, maximum: float) -> CheckResult:
    test = np.zeros(len(hashes), dtype=bool)
    test[dataset.test_positions] = True
    leaked = np.isin(hashes[test], hashes[~test])
    count = int(leaked.sum())
    fraction = count / max(int(test.sum()), 1)
    ok = fraction <= maximum
    detail = f"{count} test rows ({fraction:.1%}) also occur in the training file"
    return CheckResult("train_test_leakage", ok, round(fraction, 6), detail + ("" if ok else ": leakage"))
