"""The password of `mlpipe up`'s Prefect API (Prefect's basic auth string): made once per project,
kept in its git-ignored Prefect home, sent by the project's own commands to the `mlpipe up` that
runs, and to nothing else."""

import os
from pathlib import Path

from tasks.infra.servers import HOST
from tasks.infra.settings import Settings

AUTH_FILE = "api-auth"  # in the project's Prefect home: `mlpipe up`'s API password
UP_RECORD = "up.json"  # in the project's Prefect home: the port and process of a running `mlpipe up`


def api_auth_string(settings: Settings) -> str:
    """The password of `mlpipe up`'s Prefect API for this project: random, made once, kept in the
    project's git-ignored Prefect home with mode 0600. Clients send it as PREFECT_API_AUTH_STRING."""
    from tasks.infra.files import secret_file

    return f"mlpipe:{secret_file(settings.prefect_home / AUTH_FILE).decode()}"


def adopt_project_auth(settings: Settings) -> None:
    """A command of this project talking to the Prefect API of its own `mlpipe up` sends the
    project's password, unless one is set: only to the port that `mlpipe up` recorded, while it
    runs (another user of this machine may listen on a port it left), never to another host."""
    from urllib.parse import urlsplit

    from tasks.infra.files import read_json

    url = os.environ.get("PREFECT_API_URL")
    if not url or "PREFECT_API_AUTH_STRING" in os.environ:
        return
    record = read_json(settings.prefect_home / UP_RECORD)
    if not isinstance(record, dict) or not _alive(record.get("pid")):
        return
    address = urlsplit(url)
    if address.hostname in (HOST, "localhost") and address.port == record.get("port"):
        os.environ["PREFECT_API_AUTH_STRING"] = api_auth_string(settings)


def record_up(settings: Settings, port: int) -> Path:
    """Where `mlpipe up`'s Prefect API listens, for adopt_project_auth; removed when it stops."""
    import json

    from tasks.infra.files import write_atomic

    return write_atomic(settings.prefect_home / UP_RECORD, json.dumps({"port": port, "pid": os.getpid()}))


def _alive(pid) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):  # gone, or another user's process has its number now
        return False
    return True
