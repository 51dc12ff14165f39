"""`mlpipe up`: the Prefect server and the MLflow server (both with their UIs) on loopback."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tasks.errors import MlpipeError
from tasks.settings import Settings

HOST = "127.0.0.1"


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        # Connections closed a moment ago (TIME_WAIT) do not hold the port; a listening server does.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def start(settings: Settings, prefect_port: int, mlflow_port: int, log_dir: Path) -> list[subprocess.Popen]:
    """Start both servers and wait until each answers its health check."""
    for port in (prefect_port, mlflow_port):
        if not port_is_free(port):
            raise MlpipeError(f"port {port} on {HOST} is in use: pick another with --prefect-port/--mlflow-port")
    bin_dir = Path(sys.executable).parent
    log_dir.mkdir(parents=True, exist_ok=True)
    settings.mlflow_dir.mkdir(parents=True, exist_ok=True)
    commands = {
        "prefect": [str(bin_dir / "prefect"), "server", "start", "--host", HOST, "--port", str(prefect_port)],
        "mlflow": [
            str(bin_dir / "mlflow"),
            "server",
            "--backend-store-uri",
            settings.tracking_uri,
            "--host",
            HOST,
            "--port",
            str(mlflow_port),
        ],
    }
    health = {
        "prefect": f"http://{HOST}:{prefect_port}/api/health",
        "mlflow": f"http://{HOST}:{mlflow_port}/health",
    }
    processes = []
    try:
        for name, command in commands.items():
            log = (log_dir / f"{name}.log").open("w")
            # A process group of its own: Ctrl-C reaches mlpipe, which then stops each server in order.
            processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        for (name, url), process in zip(health.items(), processes, strict=True):
            _wait_until_healthy(name, url, process, log_dir / f"{name}.log")
    except BaseException:
        stop(processes)
        raise
    return processes


def stop(processes: list[subprocess.Popen], grace: float = 20) -> None:
    """SIGTERM to each server's whole process group (the MLflow server runs worker processes)."""
    for process in processes:
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        _signal_group(process, signal.SIGKILL)  # workers left behind by their parent


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone already


def _wait_until_healthy(name: str, url: str, process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            last = (log.read_text(errors="replace").strip().splitlines() or ["no output"])[-1]
            raise MlpipeError(f"the {name} server exited with code {process.returncode}: {last} (log: {log})")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise MlpipeError(f"the {name} server did not answer {url} within {timeout:.0f} s (log: {log})")
