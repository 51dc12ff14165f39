"""Stopping a child that starts processes of its own (MLflow's server workers, Lightning's ranks,
the tuning workers' data loaders, the project's Prefect server) as a whole: SIGTERM to it and to
everything under it, SIGKILL to what is left after a grace period. The one way every caller
stops such a child."""

import os
import signal
from collections.abc import Iterable
from contextlib import suppress

import psutil


def stop_process_trees(pids: Iterable[int], grace: float) -> None:
    """Each pid with its descendants: SIGTERM, then SIGKILL after `grace` seconds. The SIGKILL is in a
    `finally`, so a second Ctrl-C during the grace period cannot leave a rank training on alone."""
    pids = list(pids)
    tree: list[psutil.Process] = []
    for pid in pids:
        with suppress(psutil.NoSuchProcess):
            root = psutil.Process(pid)
            tree += [root, *root.children(recursive=True)]
    try:
        _send(tree, signal.SIGTERM)
        psutil.wait_procs(tree, timeout=grace)
    finally:
        _send(tree, signal.SIGKILL)  # psutil checks each is still the process it found: no reused pid
        for pid in pids:  # what outlived its parent keeps the session leader's group (start_new_session)
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        psutil.wait_procs(tree, timeout=5)


def _send(processes: list[psutil.Process], signum: int) -> None:
    for process in processes:
        with suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            process.send_signal(signum)
