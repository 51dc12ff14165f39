"""Split a data set into train, validation and test rows, stratified and seeded."""

import numpy as np

from tasks.data.builtin import BUILT_IN
from tasks.infra.errors import MlpipeError
from tasks.infra.params import SplitParams
from tasks.types import Dataset, Split, plain


def split(
    labels: np.ndarray,
    test_fraction: float,
    val_fraction: float,
    split_seed: int,
    seed: int,
    test_positions: np.ndarray | None = None,
) -> Split:
    """Stratified split. The test part is fixed (an explicit test file, or `split_seed`) so
    every run is scored on the same rows; the train/val part follows the training `seed`."""
    from sklearn.model_selection import train_test_split

    positions = np.arange(len(labels))
    if test_positions is not None:
        test = test_positions
        rest = np.setdiff1d(positions, test_positions)
    else:
        _check_stratifiable(labels, test_fraction, "test")
        rest, test = train_test_split(positions, test_size=test_fraction, stratify=labels, random_state=split_seed)
    _check_stratifiable(labels[rest], val_fraction, "val")
    train, val = train_test_split(rest, test_size=val_fraction, stratify=labels[rest], random_state=seed)
    return Split(
        train=np.sort(train),
        val=np.sort(val),
        test=np.sort(test),
        seeds={"split": split_seed, "seed": seed},
        fractions={"test": None if test_positions is not None else test_fraction, "val": val_fraction},
    )


def _check_stratifiable(labels: np.ndarray, fraction: float, part: str) -> None:
    """A stratified part needs a row of every class and every class two rows: say so with the
    numbers, before scikit-learn fails inside."""
    import math

    values, counts = np.unique(labels, return_counts=True)
    rows = math.ceil(fraction * len(labels))
    if rows < len(values) or len(labels) - rows < len(values):
        need = len(values) / len(labels)
        raise MlpipeError(
            f"split: {part}_fraction {fraction} of {len(labels)} rows gives {rows} {part} rows for {len(values)} "
            f"classes; each part needs a row of every class: use {part}_fraction >= {need:.3f} "
            f"(and <= {1 - need:.3f}) or more rows"
        )
    if counts.min() < 2:
        rare = values[counts.argmin()]
        raise MlpipeError(f"split: class {plain(rare)!r} has a single row; a stratified {part} part needs two")


def split_parts(dataset: Dataset, params: SplitParams, seed: int) -> Split:
    """A run's split of a data set: its spec's test file or test_fraction (params.yaml's for the
    built-in data), params.yaml's val_fraction and split seed, the run's training seed."""
    labels = dataset.frame[dataset.label_column].to_numpy()
    test_fraction = params.test_fraction if dataset.name in BUILT_IN else dataset.test_fraction
    return split(labels, test_fraction, params.val_fraction, params.seed, seed, dataset.test_positions)


def test_rows_digest(dataset: Dataset, split: Split) -> str:
    """Names a data version's test rows: an encoder pretrained on the other rows records it, and a
    run that fine-tunes it on the same data set checks that its test rows are the same ones."""
    import hashlib

    return hashlib.sha256(dataset.data_hash.encode() + np.sort(split.test).tobytes()).hexdigest()[:16]
