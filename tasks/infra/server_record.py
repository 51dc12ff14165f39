"""The record of the project's Prefect server (tasks/infra/project_server.py), .prefect/server.json,
and what makes a recorded process the server: still running, started when the record says (not a
process that got its number since), its command the server's, and listening on its port itself."""

from dataclasses import dataclass

from tasks.infra.local_servers import HOST, SERVER_MODULE
from tasks.infra.settings import Settings

RECORD = "server.json"  # in the project's Prefect home: the server's port, process, start time and database
MODULE = SERVER_MODULE


@dataclass(frozen=True)
class ProjectServer:
    port: int
    pid: int
    database: str = ""  # where it keeps its runs, any password masked

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"


def read_record(settings: Settings) -> ProjectServer | None:
    """The recorded server, if its process is the server (it may still be starting)."""
    import psutil

    from tasks.infra.files import read_json

    record = read_json(settings.prefect_home / RECORD)
    if not isinstance(record, dict) or not isinstance(record.get("port"), int):
        return None
    try:
        process = psutil.Process(record.get("pid"))
        if abs(process.create_time() - record.get("started")) >= 1 or MODULE not in process.cmdline():
            return None
    except (psutil.Error, TypeError, ValueError):
        return None
    return ProjectServer(record["port"], record["pid"], record.get("database", ""))


def started_at(server: ProjectServer) -> float:
    import psutil

    try:
        return psutil.Process(server.pid).create_time()
    except psutil.Error:
        return 0.0


def listens(server: ProjectServer) -> bool:
    """The server's own process listens on its port: a call there reaches it and nothing else."""
    import psutil

    try:
        connections = psutil.Process(server.pid).net_connections(kind="inet")
    except psutil.Error:
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == server.port for c in connections)


def terminate(pid: int, grace: float = 20) -> None:
    """The server and every process it started: SIGTERM, SIGKILL after `grace` seconds."""
    from tasks.infra.process_groups import stop_process_trees

    stop_process_trees([pid], grace)
