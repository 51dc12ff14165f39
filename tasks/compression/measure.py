"""What a variant costs on this CPU: size on disk, parameters, latency per row at batch 1 (p50 and
p95) and throughput at batch 256, all through one `predict(rows)` callable: a served model on raw
rows (its preprocessing included, as a user sees it), or a network on its inputs."""

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

WARMUP = 20
SINGLE_ROWS = 200  # batch-1 calls timed
THROUGHPUT_SECONDS = 1.0
BATCH = 256


@dataclass(frozen=True)
class Cost:
    size_bytes: int
    parameters: int
    p50_ms: float  # one row at a time
    p95_ms: float
    rows_per_second: float  # batches of BATCH rows

    def metrics(self) -> dict[str, float]:
        return {f"compression/{name}": float(value) for name, value in asdict(self).items()}


def folder_size(path: Path) -> int:
    """Bytes of a file, or of every file under a folder (an MLflow model's)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def measure(predict: Callable, inputs, size_bytes: int, parameters: int) -> Cost:
    """Time `predict` on rows of `inputs` (a DataFrame of raw rows or an array of network inputs):
    every variant is judged on the same rows, in this process, after a warm-up."""
    rows = len(inputs)
    take = inputs.iloc if hasattr(inputs, "iloc") else inputs
    batch = take[np.arange(BATCH) % rows]
    for i in range(WARMUP):
        predict(take[i % rows : i % rows + 1])
    times = []
    for i in range(SINGLE_ROWS):
        one = take[i % rows : i % rows + 1]
        started = time.perf_counter()
        predict(one)
        times.append(time.perf_counter() - started)
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < THROUGHPUT_SECONDS:
        predict(batch)
        done += BATCH
    elapsed = time.perf_counter() - started
    p50, p95 = np.percentile(times, [50, 95]) * 1e3
    return Cost(size_bytes, parameters, round(float(p50), 4), round(float(p95), 4), round(done / elapsed, 1))
