"""`mlpipe up` in a subprocess, for the tests that run against its servers."""

import subprocess
import sys
from pathlib import Path

from conftest import free_port

MLPIPE = str(Path(sys.executable).with_name("mlpipe"))


class Up:
    """`mlpipe up` in a subprocess on free ports, its output read in a thread (a blocking readline()
    on a silent process would hang the test)."""

    def __init__(self, env: dict):
        import queue
        import threading
        import time

        self.env = env
        self.down: subprocess.CompletedProcess | None = None
        self.mlflow_port = free_port()  # Prefect's: 4200 if free, else a free one (read from what it prints)
        args = [MLPIPE, "up", "--mlflow-port", str(self.mlflow_port)]
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: queue.Queue[str] = queue.Queue()
        self.reader = threading.Thread(target=lambda: [self.lines.put(line) for line in self.process.stdout])
        self.reader.daemon = True
        self.reader.start()
        self.seen: list[str] = []
        deadline = time.monotonic() + 240
        try:
            while not any(line.startswith("Logs in") for line in self.seen):
                assert time.monotonic() < deadline, f"mlpipe up printed only {self.seen}"
                assert self.process.poll() is None, self.process.stderr.read()
                try:
                    self.seen.append(self.lines.get(timeout=1))
                except queue.Empty:
                    continue
        except BaseException:  # the caller's try/finally is not reached: stop what it started
            self.interrupt()
            raise
        (ui,) = [line for line in self.seen if line.startswith("Prefect UI: ")]
        self.prefect_port = int(ui.split()[2].rsplit(":", 1)[1])
        # The API's password (tasks/infra/api_auth.py), for clients outside the servers' project folder.
        self.auth_string = "mlpipe:" + (Path(env["MLPIPE_ROOT"]) / ".prefect" / "api-auth").read_text()

    def interrupt(self) -> str:
        """Ctrl-C (which stops MLflow's server), then `mlpipe down` (the project's Prefect server);
        everything `mlpipe up` printed."""
        import signal

        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGINT)
                self.process.wait(timeout=60)
            self.reader.join(timeout=10)
        finally:
            self.kill()
            if self.down is None:  # once: a second interrupt() (in a test's finally) keeps the first answer
                self.down = subprocess.run([MLPIPE, "down"], env=self.env, capture_output=True, text=True, timeout=60)
        out = "".join(self.seen)
        while not self.lines.empty():
            out += self.lines.get()
        return out

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
