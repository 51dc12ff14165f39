"""The project's Prefect server: one per project folder, started in the background by the first
command that needs Prefect's API and finds none configured, and reused by the next ones (its port
and process in .prefect/server.json). It keeps every run of the project, from the command line, the
UI, a schedule or an event, in one database (.prefect/) and one UI, with `mlpipe up`'s password and
CORS rules; it stops itself after `server.idle_minutes` without a call, or with `mlpipe down`.
MLPIPE_PREFECT_SERVER=temporary keeps the old way (CI, tests): each run its own API, gone when it ends."""

import http.client
import json
import os
import sys
import threading
import time
import urllib.request
from collections.abc import Callable

from tasks.infra.api_auth import api_auth_string
from tasks.infra.errors import MlpipeError
from tasks.infra.local_servers import HOST, Server, free_port, port_is_free, prefect_database, prefect_server, spawn
from tasks.infra.server_record import MODULE, RECORD, ProjectServer, listens, read_record, started_at, terminate
from tasks.infra.settings import Settings

MODE = "MLPIPE_PREFECT_SERVER"  # project (the default) or temporary
LOG = "server.log"
DEFAULT_PORT = 4200  # Prefect's own default; a free port where another server has it
START_SECONDS = 120  # Prefect's server takes ~10 s to answer on a 2-core machine, more on a busy one
# The server's environment: the system's and the server's own database settings, never the secrets
# of whichever command started it (a Prefect Cloud key, a client's auth string, store passwords).
KEPT = ("PATH", "HOME", "USER", "LANG", "TZ", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV", "SSL_CERT_FILE")
KEPT_PREFIXES = ("LC_", "PREFECT_API_DATABASE_", "PREFECT_SERVER_")


def temporary_servers() -> bool:
    """MLPIPE_PREFECT_SERVER=temporary: no project server, each command-line run starts its own API."""
    mode = os.environ.get(MODE, "project")
    if mode not in ("project", "temporary"):
        raise MlpipeError(f"{MODE}={mode!r}: use project (the default) or temporary")
    return mode == "temporary"


def running(settings: Settings) -> ProjectServer | None:
    """The server its record names, if that process still runs, is the server (not a process that
    got its number since) and itself listens on the port (not another program that took it)."""
    record = read_record(settings)
    return record if record is not None and listens(record) else None


def ensure(settings: Settings, idle_minutes: float, port: int | None = None, environ: dict | None = None):
    """The project's server, answering: the running one (or one another command is starting), else
    one started now on `port` (else 4200, else a free port), with `environ`'s settings (else this
    process's). A file lock makes a second command wait for the first one's server."""
    from filelock import FileLock, Timeout

    home = settings.prefect_home
    home.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(home / ".server.lock", timeout=2 * START_SECONDS):
            record = read_record(settings)
            if record is not None:  # starting (wait for it), or up: a slow answer is not a hung server
                deadline = max(started_at(record) + START_SECONDS, time.time() + 15)
                if _answering(record, settings, deadline):
                    return record
                terminate(record.pid)  # ours, but hung: replaced
            return _start(settings, idle_minutes, port, dict(os.environ) if environ is None else environ)
    except Timeout:
        raise MlpipeError(f"another command has been starting the Prefect server for minutes (lock: {home})") from None


def ensure_in_background(settings: Settings, idle_minutes: float) -> Callable[[], ProjectServer]:
    """ensure() in a thread, while this process imports what it needs; returns the wait for it."""
    found: dict = {}
    environ = dict(os.environ)  # read here: imports in this thread may change the environment meanwhile

    def work() -> None:
        try:
            found["server"] = ensure(settings, idle_minutes, environ=environ)
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


def attach_running(settings: Settings, idle_minutes: float) -> bool:
    """attach() to the project's server if it runs and answers; False where none does."""
    server = running(settings)
    if server is None or not answers(server, settings):
        return False
    attach(server, settings, idle_minutes)
    return True


def stop(settings: Settings) -> ProjectServer | None:
    """`mlpipe down`: the project's server stopped (None if none ran), its record removed; after a
    command that is starting one has finished."""
    from filelock import FileLock

    home = settings.prefect_home
    home.mkdir(parents=True, exist_ok=True)
    with FileLock(home / ".server.lock", timeout=2 * START_SECONDS):
        server = read_record(settings)
        if server is not None:
            terminate(server.pid)
        (home / RECORD).unlink(missing_ok=True)
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


def answers(server: ProjectServer, settings: Settings) -> bool:
    """It takes a call with the project's password (a hung server does not)."""
    import base64

    request = urllib.request.Request(f"{server.api_url}/admin/version")
    request.add_header("Authorization", f"Basic {base64.b64encode(api_auth_string(settings).encode()).decode()}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status == 200
    except (OSError, http.client.HTTPException):
        return False


def _start(settings: Settings, idle_minutes: float, port: int | None, environ: dict) -> ProjectServer:
    """Spawned, recorded at once (a command after this one finds it starting, never a second server
    beside it), then answering; stopped and forgotten if it does not get there."""
    import psutil

    from tasks.infra.files import write_atomic

    if port is not None and not port_is_free(port):
        raise MlpipeError(f"port {port} on {HOST} is in use: pick another with --prefect-port")
    port = port or (DEFAULT_PORT if port_is_free(DEFAULT_PORT) else free_port())
    home = settings.prefect_home
    spec = prefect_server(port, home, api_auth_string(settings))
    command = [sys.executable, "-m", MODULE, str(port), str(idle_minutes * 60)]
    kept = {k: v for k, v in environ.items() if k in KEPT or k.startswith(KEPT_PREFIXES)}
    process = spawn(Server("prefect", command, spec.health_url, spec.env), home / LOG, kept, cwd=home)
    try:
        database = prefect_database(settings, kept)
        record = {"port": port, "pid": process.pid, "started": psutil.Process(process.pid).create_time()}
        write_atomic(home / RECORD, json.dumps(record | {"database": database}))
        server = ProjectServer(port, process.pid, database)
        if not _answering(server, settings, deadline=time.time() + START_SECONDS):
            last = ((home / LOG).read_text(errors="replace").strip().splitlines() or ["no output"])[-1]
            raise MlpipeError(f"the project's Prefect server did not start: {last} (log: {home / LOG})")
    except BaseException:
        terminate(process.pid)
        (home / RECORD).unlink(missing_ok=True)
        raise
    return server


def _answering(server: ProjectServer, settings: Settings, deadline: float) -> bool:
    """Until `deadline` (Unix time): it listens on its port and takes a call with the password. The
    password goes out only once the server's own process holds the port."""
    import psutil

    while True:
        if listens(server) and answers(server, settings):
            return True
        try:
            exited = psutil.Process(server.pid).status() == psutil.STATUS_ZOMBIE
        except psutil.Error:
            exited = True
        if exited or time.time() > deadline:
            return False
        time.sleep(0.5)


def _keep_alive(server: ProjectServer, settings: Settings, period: float) -> None:
    while True:
        time.sleep(period)
        answers(server, settings)
