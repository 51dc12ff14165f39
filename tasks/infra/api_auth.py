"""The password of the project's Prefect API (Prefect's basic auth string): made once per project,
kept in its git-ignored Prefect home, sent by the project's own commands to the project's server
(tasks/infra/project_server.py), and to nothing else."""

from tasks.infra.settings import Settings

AUTH_FILE = "api-auth"  # in the project's Prefect home: its Prefect server's API password
AUTH_USER = "mlpipe"  # basic auth's user: the auth string is `<user>:<the file's content>`


def api_auth_string(settings: Settings) -> str:
    """The password of the project's Prefect API: random, made once, kept in the
    project's git-ignored Prefect home with mode 0600. Clients send it as PREFECT_API_AUTH_STRING."""
    from tasks.infra.files import secret_file

    return f"{AUTH_USER}:{secret_file(settings.prefect_home / AUTH_FILE).decode()}"
