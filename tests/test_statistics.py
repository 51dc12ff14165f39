"""The gates' paired bootstrap (tasks/evaluation/statistics.py): the figures it always gave, in
memory that does not grow with rows x resamples."""

import tracemalloc

import numpy as np
import pytest

from tasks.evaluation import statistics
from tasks.evaluation.statistics import paired_bootstrap


def one_draw_bootstrap(new_correct, old_correct, samples, confidence, seed):
    """The bootstrap as it was before it drew in blocks: one (samples, rows) index matrix."""
    diff = new_correct.astype(np.float64) - old_correct.astype(np.float64)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(samples, len(diff)))].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(diff.mean()), (float(low), float(high))


@pytest.mark.parametrize("rows", [2, 7, 360, 5003])
def test_the_bootstrap_in_blocks_gives_exactly_the_figures_of_one_draw(rows, monkeypatch):
    rng = np.random.default_rng(rows)
    old = rng.random(rows) < 0.8
    new = np.where(rng.random(rows) < 0.1, ~old, old)
    # Blocks of a few resamples, not dividing the 1000: the last block is a short one.
    monkeypatch.setattr(statistics, "BLOCK_ELEMENTS", 3 * rows)
    for seed in (0, 7):
        assert paired_bootstrap(new, old, 1000, 0.95, seed) == one_draw_bootstrap(new, old, 1000, 0.95, seed)


def test_a_bootstrap_on_200000_rows_stays_within_100_mb():
    rng = np.random.default_rng(0)
    old = rng.random(200_000) < 0.9
    new = np.where(rng.random(200_000) < 0.02, ~old, old)
    tracemalloc.start()
    try:
        delta, (low, high) = paired_bootstrap(new, old, 1000, 0.95, 0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # One draw would hold 1000 x 200,000 int64 indices (1.6 GB) and as many float64 values.
    assert peak < 100 * 2**20, f"peak {peak / 2**20:.0f} MB"
    assert low < delta < high and high - low < 0.002
