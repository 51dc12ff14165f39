"""The project's Prefect server: one per project folder, started in the background by the first
command that needs Prefect's API and finds none configured, and reused by the next ones (its port
and process in .prefect/server.json). It keeps every run of the project, from the command line, the
UI, a schedule or an event, in one database (.prefect/) and one UI, with `mlpipe up`'s password and
CORS rules; it stops itself after `server.idle_minutes` without a call, or with `mlpipe down`.
MLPIPE_PREFECT_SERVER=temporary keeps the old way (CI, tests): each run its own API, gone when it ends."""

import json
import os
import signal
import sys
import threading
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from tasks.infra.api_auth import api_auth_string
from tasks.infra.errors import MlpipeError
from tasks.infra.servers import HOST, Server, free_port, port_is_free, prefect_server, spawn, wait_until_healthy
from tasks.infra.settings import Settings

MODE = "MLPIPE_PREFECT_SERVER"  # project (the default) or temporary
RECORD = "server.json"  # in the project's Prefect home: the running server's port, process and start time
LOG = "server.log"
MODULE = "tasks.infra.idle_server"
DEFAULT_PORT = 4200  # Prefect's own default; a free port where another server has it
START_SECONDS = 120  # Prefect's server takes ~10 s to answer on a 2-core machine, more on a busy one
# The server's environment: its own settings and the system's, not the secrets of the command that started it.
KEPT = ("PATH", "HOME", "USER", "LANG", "TZ", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV", "SSL_CERT_FILE")


@dataclass(frozen=True)
class ProjectServer:
    port: int
    pid: int

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"


def temporary_servers() -> bool:
    """MLPIPE_PREFECT_SERVER=temporary: no project server, each command-line run starts its own API."""
    mode = os.environ.get(MODE, "project")
    if mode not in ("project", "temporary"):
        raise MlpipeError(f"{MODE}={mode!r}: use project (the default) or temporary")
    return mode == "temporary"


def running(settings: Settings) -> ProjectServer | None:
    """The server its record names, if that process still runs and is the server (a process that
    got its number since, or a port another program took, is not)."""
    from tasks.infra.files import read_json

    record = read_json(settings.prefect_home / RECORD)
    if not isinstance(record, dict) or not isinstance(record.get("port"), int):
        return None
    if not _is_the_server(record.get("pid"), record.get("started")):
        return None
    return ProjectServer(record["port"], record["pid"])


def ensure(settings: Settings, idle_minutes: float, port: int | None = None) -> ProjectServer:
    """The project's server, answering: the running one, or one started now on `port` (else 4200,
    else a free port). A file lock makes a second command wait for the first one's server."""
    from filelock import FileLock, Timeout

    home = settings.prefect_home
    home.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(home / ".server.lock", timeout=START_SECONDS + 30):
            server = running(settings)
            if server is not None and answers(server, settings):
                return server
            if server is not None:  # ours, but hung: replaced
                _terminate(server.pid)
            return _start(settings, idle_minutes, port)
    except Timeout:
        raise MlpipeError(f"another command has been starting the Prefect server for minutes (lock: {home})") from None


def ensure_in_background(settings: Settings, idle_minutes: float) -> Callable[[], ProjectServer]:
    """ensure() in a thread, while this process imports what it needs; returns the wait for it."""
    found: dict = {}

    def work() -> None:
        try:
            found["server"] = ensure(settings, idle_minutes)
        except BaseException as error:  # raised again in the caller's thread
            found["error"] = error

    thread = threading.Thread(target=work, name="mlpipe-project-server", daemon=True)
    thread.start()

    def wait() -> ProjectServer:
        thread.join()
        if "error" in found:
            raise found["error"]
        return found["server"]

    return wait


def attach(server: ProjectServer, settings: Settings, idle_minutes: float) -> None:
    """This process (and its children) call the project's server, with its password, and keep it
    from stopping while this process runs: a long silent epoch makes no call of its own."""
    from prefect.context import refresh_global_settings_context

    os.environ["PREFECT_API_URL"] = server.api_url
    os.environ["PREFECT_API_AUTH_STRING"] = api_auth_string(settings)
    refresh_global_settings_context()
    period = min(60.0, idle_minutes * 60 / 3)
    threading.Thread(target=_keep_alive, args=(server, settings, period), name="mlpipe-keep-alive", daemon=True).start()


def stop(settings: Settings) -> ProjectServer | None:
    """`mlpipe down`: the project's server stopped (None if none ran), its record removed."""
    server = running(settings)
    if server is not None:
        _terminate(server.pid)
    (settings.prefect_home / RECORD).unlink(missing_ok=True)
    return server


def adopt_project_auth(settings: Settings) -> None:
    """A command of this project talking to its own Prefect server (PREFECT_API_URL set, as `mlpipe up`
    prints it) sends the project's password, unless one is set: only to the port of the project's
    server while it runs (another user of this machine may listen on a port it left), never to
    another host."""
    from urllib.parse import urlsplit

    url = os.environ.get("PREFECT_API_URL")
    if not url or "PREFECT_API_AUTH_STRING" in os.environ:
        return
    server = running(settings)
    address = urlsplit(url)
    if server is not None and address.hostname in (HOST, "localhost") and address.port == server.port:
        os.environ["PREFECT_API_AUTH_STRING"] = api_auth_string(settings)


def _start(settings: Settings, idle_minutes: float, port: int | None) -> ProjectServer:
    import psutil

    from tasks.infra.files import write_atomic

    if port is not None and not port_is_free(port):
        raise MlpipeError(f"port {port} on {HOST} is in use: pick another with --prefect-port")
    port = port or (DEFAULT_PORT if port_is_free(DEFAULT_PORT) else free_port())
    home = settings.prefect_home
    spec = prefect_server(port, home, api_auth_string(settings))
    command = [sys.executable, "-m", MODULE, str(port), str(idle_minutes * 60)]
    environment = {k: v for k, v in os.environ.items() if k in KEPT or k.startswith(("PREFECT_", "LC_"))}
    environment.pop("PREFECT_API_URL", None)
    process = spawn(Server("prefect", command, spec.health_url, spec.env), home / LOG, environment, cwd=home)
    wait_until_healthy("project's Prefect", spec.health_url, process, home / LOG, timeout=START_SECONDS)
    started = psutil.Process(process.pid).create_time()
    write_atomic(home / RECORD, json.dumps({"port": port, "pid": process.pid, "started": started}))
    return ProjectServer(port, process.pid)


def _is_the_server(pid, started) -> bool:
    import psutil

    try:
        process = psutil.Process(pid)
        return abs(process.create_time() - started) < 1 and MODULE in process.cmdline()
    except (psutil.Error, TypeError, ValueError):
        return False


def answers(server: ProjectServer, settings: Settings) -> bool:
    """It takes a call with the project's password (a hung server, or another program, does not)."""
    import base64

    request = urllib.request.Request(f"{server.api_url}/admin/version")
    request.add_header("Authorization", f"Basic {base64.b64encode(api_auth_string(settings).encode()).decode()}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status == 200
    except OSError:
        return False


def _keep_alive(server: ProjectServer, settings: Settings, period: float) -> None:
    import time

    while True:
        time.sleep(period)
        answers(server, settings)


def _terminate(pid: int, grace: float = 20) -> None:
    """SIGTERM to the server's process group, SIGKILL after `grace` seconds."""
    import psutil

    try:
        os.killpg(pid, signal.SIGTERM)
        psutil.Process(pid).wait(timeout=grace)
    except psutil.TimeoutExpired:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, psutil.NoSuchProcess):
        pass  # gone already
