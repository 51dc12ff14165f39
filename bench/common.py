"""Shared by the benchmarks: medians of repeated timings and one JSON result file per benchmark.

`bench/report.py` turns bench/results/*.json into bench/results.md.
"""

import json
import os
import platform
import statistics
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).with_name("results")
sys.path.insert(0, str(ROOT))


def median_seconds(action, repeats: int = 3) -> float:
    """Median wall time of `repeats` calls of action()."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.machine()}, {os.cpu_count()} CPUs, {memory:.0f} GiB, Python {platform.python_version()}"


def save(name: str, title: str, rows: list[dict], notes: str = "", extra: dict | None = None) -> Path:
    """rows: {"figure", "value", "target", "met"} (met: True, False or None when no target);
    extra: more keys for the script's own use (a later partial run reads them back)."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    document = {"title": title, "date": date.today().isoformat(), "machine": machine(), "rows": rows, "notes": notes}
    document |= extra or {}
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def sample_peak_memory(process, peak: list[int], every: float = 0.2) -> None:
    """Until `process` (a Popen) ends, keep in peak[0] the most memory its whole process tree
    held: the proportional set size (PSS), so that a page shared by two processes counts once."""
    import psutil

    root = psutil.Process(process.pid)
    while process.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            peak[0] = max(peak[0], sum(p.memory_full_info().pss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(every)
