"""Stopping a child with everything it started (tasks/infra/process_groups.py)."""

import subprocess
import sys
import time

import psutil

from tasks.infra.process_groups import stop_process_trees

# A parent that ignores SIGTERM and starts a grandchild that ignores it too, in a session of its own.
PARENT = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
child = subprocess.Popen([sys.executable, "-c", stubborn], start_new_session=True)
print(child.pid, flush=True)
time.sleep(60)
"""


def test_a_child_that_ignores_sigterm_is_killed_with_its_children_after_the_grace():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True, start_new_session=True)
    grandchild = psutil.Process(int(parent.stdout.readline()))
    started = time.monotonic()
    stop_process_trees([parent.pid], grace=1)
    parent.wait(timeout=5)
    assert not grandchild.is_running() or grandchild.status() == psutil.STATUS_ZOMBIE
    assert parent.returncode is not None and 1 <= time.monotonic() - started < 10


def test_a_child_that_stops_on_sigterm_stops_within_the_grace():
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    time.sleep(0.5)  # the interpreter is up: SIGTERM's default action ends it
    process, started = psutil.Process(sleeper.pid), time.monotonic()
    stop_process_trees([sleeper.pid], grace=30)
    assert not process.is_running() and time.monotonic() - started < 5
    sleeper.wait(timeout=5)  # reaped by psutil already: Popen learns it is gone
    stop_process_trees([sleeper.pid], grace=1)  # a second stop of a gone process is no error
