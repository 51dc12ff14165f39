"""Paired comparisons of two models on the same test rows, for the gates that judge one against
another: promotion (tasks/registry/promotion.py), tuning's verdict and compression's
non-inferiority. Memory stays bounded whatever the number of rows: the bootstrap draws its
resamples a block at a time."""

import numpy as np

# A paired sign test reaches 95 % (two-sided) only when at least 6 rows differ, all one way: on
# fewer differing rows no interval can tell a gain or a loss from chance, whatever its size.
MIN_DIFFERING_ROWS = 6

# Row indices drawn at once: 2**21 int64 (16 MB), and as many float64 for the rows they pick.
BLOCK_ELEMENTS = 2**21


def rows_judged(new_correct: np.ndarray, old_correct: np.ndarray) -> tuple[int, str]:
    """(rows where the two differ, the words that say on how many rows they were judged)."""
    rows, differ = len(new_correct), int(np.sum(new_correct != old_correct))
    return differ, f"{rows} rows judged, {differ} where they differ (one row is {1 / rows:.4f})"


def paired_bootstrap(
    new_correct: np.ndarray, old_correct: np.ndarray, samples: int, confidence: float, seed: int
) -> tuple[float, tuple[float, float]]:
    """Accuracy delta (new - old) and its bootstrap interval, resampling the same test rows for both."""
    diff = new_correct.astype(np.float64) - old_correct.astype(np.float64)
    means = resampled_means(diff, samples, seed)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(diff.mean()), (float(low), float(high))


def resampled_means(values: np.ndarray, samples: int, seed: int) -> np.ndarray:
    """The mean of each of `samples` resamples (with replacement) of `values`: (samples,).
    Drawn in blocks of whole resamples, in order, from one generator: the same figures as one
    (samples, rows) draw, without holding it."""
    rng, rows = np.random.default_rng(seed), len(values)
    block = max(1, BLOCK_ELEMENTS // max(rows, 1))  # resamples per draw
    means = np.empty(samples, dtype=np.float64)
    for start in range(0, samples, block):
        stop = min(start + block, samples)
        means[start:stop] = values[rng.integers(0, rows, size=(stop - start, rows))].mean(axis=1)  # (block,)
    return means
