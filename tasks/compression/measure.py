"""What a variant costs on this CPU: size on disk, parameters, latency per row at batch 1 (p50 and
p95) and throughput at batch 256, all through one `predict(inputs) -> logits` callable."""

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

WARMUP = 20
SINGLE_ROWS = 300  # batch-1 calls timed
THROUGHPUT_SECONDS = 2.0
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


def measure(predict: Callable[[np.ndarray], object], inputs: np.ndarray, size_bytes: int, parameters: int) -> Cost:
    """Time `predict` on rows of `inputs` (network inputs, already preprocessed): every variant is
    judged on the same rows, in this process, after a warm-up."""
    rows = len(inputs)
    batch = inputs[np.arange(BATCH) % rows]
    for i in range(WARMUP):
        predict(inputs[i % rows : i % rows + 1])
    times = []
    for i in range(SINGLE_ROWS):
        one = inputs[i % rows : i % rows + 1]
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
