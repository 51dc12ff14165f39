"""The password of the project's Prefect API (Prefect's basic auth string): made once per project,
kept in its git-ignored Prefect home, sent by the project's own commands to the project's server
(tasks/infra/project_server.py), and to nothing else."""

import os

from tasks.infra.servers import HOST
from tasks.infra.settings import Settings

AUTH_FILE = "api-auth"  # in the project's Prefect home: its Prefect server's API password


def api_auth_string(settings: Settings) -> str:
    """The password of `mlpipe up`'s Prefect API for this project: random, made once, kept in the
    project's git-ignored Prefect home with mode 0600. Clients send it as PREFECT_API_AUTH_STRING."""
    from tasks.infra.files import secret_file

    return f"mlpipe:{secret_file(settings.prefect_home / AUTH_FILE).decode()}"


def adopt_project_auth(settings: Settings) -> None:
    """A command of this project talking to its own Prefect server (PREFECT_API_URL set, as `mlpipe up`
    prints it) sends the project's password, unless one is set: only to the port of the project's
    server while it runs (another user of this machine may listen on a port it left), never to
    another host."""
    from urllib.parse import urlsplit

    from tasks.infra.project_server import running

    url = os.environ.get("PREFECT_API_URL")
    if not url or "PREFECT_API_AUTH_STRING" in os.environ:
        return
    server = running(settings)
    address = urlsplit(url)
    if server is not None and address.hostname in (HOST, "localhost") and address.port == server.port:
        os.environ["PREFECT_API_AUTH_STRING"] = api_auth_string(settings)
