"""Servers on loopback: Prefect's and MLflow's with their UIs (the project's Prefect server:
project_server.py; `mlpipe up`), and the temporary Prefect API of a run with MLPIPE_PREFECT_SERVER=temporary."""

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tasks.infra.errors import MlpipeError
from tasks.infra.prefect_private import LEASE_STORAGE_ON_DISK
from tasks.infra.settings import Settings

SERVER_MODULE = "tasks.infra.idle_server"  # the process of a Prefect server that mlpipe starts
HOST = "127.0.0.1"
TEMPORARY_API = "MLPIPE_TEMPORARY_PREFECT_API"  # the API only this process uses: no lock may go through it


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        # Connections closed a moment ago (TIME_WAIT) do not hold the port; a listening server does.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A loopback port that nothing listens on now (the system picks it)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    name: str
    command: list[str]
    health_url: str
    env: dict[str, str] = field(default_factory=dict)  # on top of this process's environment


def prefect_server(port: int, home: Path | None = None, auth_string: str | None = None) -> Server:
    """Prefect's API and UI on loopback; `home` gives it a database of its own (PREFECT_HOME);
    with `auth_string`, a call without it is refused (401) and the UI asks for it once."""
    command = [str(Path(sys.executable).with_name("prefect")), "server", "start", "--host", HOST, "--port", str(port)]
    # The UI's pages call the API at this address; without it they look for the default port 4200.
    env = {"PREFECT_UI_API_URL": f"http://{HOST}:{port}/api", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    # Only the UI's own pages may call it from a browser, not any web page the user visits (Prefect
    # allows every origin by default). CORS alone does not stop a page whose host name is made to
    # resolve to 127.0.0.1 (DNS rebinding): the auth string does.
    env["PREFECT_SERVER_API_CORS_ALLOWED_ORIGINS"] = f"http://{HOST}:{port},http://localhost:{port}"
    # The leases of the locks' slots on disk (PREFECT_HOME), not in memory: a restart forgets no
    # lease, so the slot of a holder that died frees when its lease ends instead of never.
    env["PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE"] = LEASE_STORAGE_ON_DISK
    if home is not None:
        env["PREFECT_HOME"] = str(home)
    if auth_string is not None:  # the server's own services call its API too
        env["PREFECT_SERVER_API_AUTH_STRING"] = env["PREFECT_API_AUTH_STRING"] = auth_string
    return Server("prefect", command, f"http://{HOST}:{port}/api/health", env)


def prefect_database(settings: Settings, environ: dict | None = None) -> str:
    """What the project's Prefect server keeps its runs in, by `environ` (else this process's):
    Prefect's own setting (PREFECT_API_DATABASE_CONNECTION_URL, a PostgreSQL server for a team), else
    the project's SQLite file; any password masked."""
    from tasks.infra.errors import redact

    url = (os.environ if environ is None else environ).get("PREFECT_API_DATABASE_CONNECTION_URL")
    return redact(url) if url else str(settings.prefect_home / "prefect.db")


def mlflow_server(settings: Settings, port: int, host: str = HOST) -> Server:
    """The project's MLflow store (MLFLOW_TRACKING_URI's database, else the SQLite file) and UI, and
    its artifact proxy: clients read and write artifacts through it, kept in the object storage
    (MLPIPE_STORAGE_URL) or the project's mlflow/artifacts."""
    settings.mlflow_dir.mkdir(parents=True, exist_ok=True)
    command = [str(Path(sys.executable).with_name("mlflow")), "server", "--host", host, "--port", str(port)]
    # The store's URI and the storage's URL may hold a password: through the environment, never
    # the command line, which `ps` shows to every user of the machine.
    env = {"MLFLOW_BACKEND_STORE_URI": settings.tracking_uri, "MLFLOW_ARTIFACTS_DESTINATION": settings.served_artifacts}
    return Server("mlflow", command, f"http://{HOST}:{port}/health", env)


def spawn(server: Server, log: Path, base_env: dict | None = None, cwd: Path | None = None) -> subprocess.Popen:
    """Start a server in a process group of its own, its output in `log`; its environment is
    `base_env` (else this process's) and the server's own settings.

    Its own group: Ctrl-C reaches only mlpipe, which then stops each server in order."""
    log.parent.mkdir(parents=True, exist_ok=True)
    base = os.environ if base_env is None else base_env
    env = {k: v for k, v in base.items() if k != "PREFECT_API_URL"} | server.env  # a server is no client
    with log.open("w") as output:
        return subprocess.Popen(
            server.command,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )


def launch(servers: list[Server], log_dir: Path) -> list[subprocess.Popen]:
    """Start the servers at once (each takes seconds) and wait until every one answers."""
    processes = []
    try:
        for server in servers:
            processes.append(spawn(server, log_dir / f"{server.name}.log"))
        for server, process in zip(servers, processes, strict=True):
            wait_until_healthy(server.name, server.health_url, process, log_dir / f"{server.name}.log")
    except BaseException:
        stop(processes)
        raise
    return processes


def stop(processes: list[subprocess.Popen], grace: float = 20) -> None:
    """Each server stopped with every process it started (the MLflow server runs worker processes)."""
    from tasks.infra.process_groups import stop_process_trees

    stop_process_trees([process.pid for process in processes], grace)
    for process in processes:
        process.wait()


def wait_until_healthy(name: str, url: str, process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
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


def require_server(health_url: str, what: str, credentials: tuple[str, str] | None = None) -> None:
    """One clear line when a server that must be running does not answer; no password in it.
    Credentials come as basic auth: in the URL's user info, or as (user, password)."""
    import base64

    from tasks.infra.settings import split_credentials

    url, in_url = split_credentials(health_url)
    credentials = credentials or in_url
    request = urllib.request.Request(url)
    if credentials is not None:
        token = base64.b64encode(":".join(credentials).encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10):
            return
    except OSError as error:
        reason = getattr(error, "reason", error)
        raise MlpipeError(f"{what} does not answer at {url} ({reason})") from None


def start_temporary_prefect_api() -> Callable[[], None] | None:
    """With no Prefect server configured, the API this process's flow run needs, started at once.

    Prefect itself would start the same server (`SubprocessASGIServer`: uvicorn with Prefect's
    app, no UI) on the flow's first call, after importing its server code in this process
    (~5 s here) and then waiting for it to boot (~5 s). Started here instead, it boots while
    this process imports what the stages need, and this process never imports the server code.
    It stops when this process exits, after Prefect's log and event workers have drained into it
    (atexit runs handlers in reverse order). Returns a function that waits until the API
    answers; None where a server is configured."""
    import atexit

    from prefect.context import refresh_global_settings_context
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return None
    port = free_port()
    # Prefect's app as Prefect starts its own temporary one (ephemeral: fewer services), never idle.
    command = [sys.executable, "-m", SERVER_MODULE, str(port), "inf", "--ephemeral"]
    url = f"http://{HOST}:{port}/api"
    env = {"PREFECT_UI_ENABLED": "0", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env["PREFECT_SERVER_API_CORS_ALLOWED_ORIGINS"] = f"http://{HOST}:{port}"  # no UI: no browser page may call it
    log = Path(tempfile.mkdtemp(prefix="mlpipe-prefect-")) / "server.log"
    process = spawn(Server("prefect", command, f"{url}/health", env), log)
    atexit.register(_drain_then_stop, process)
    os.environ["PREFECT_API_URL"] = url  # for every thread (Prefect's log and event workers) and child
    os.environ[TEMPORARY_API] = url  # no other machine sees it: registry/promotion_lock.py must not lock through it
    refresh_global_settings_context()
    return lambda: wait_until_healthy("Prefect's temporary", f"{url}/health", process, log)


def _drain_then_stop(process: subprocess.Popen) -> None:
    """At exit: the workers drain, then the server stops. Its keep-alive connections would hold a
    graceful stop for seconds: one second, then it is killed."""
    from tasks.infra.prefect_private import drain_prefect_workers

    drain_prefect_workers()
    stop([process], grace=1)
