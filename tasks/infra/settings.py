"""Where the pipeline keeps its files and which stores it talks to.

Everything is relative to the project root (MLPIPE_ROOT, else the working directory), so a
test can point a whole pipeline at a temporary folder. Nothing here touches the disk on import.
"""

import os
from dataclasses import dataclass
from pathlib import Path

# The checkout that holds this code: built-in expectation suites and params.yaml live here.
CODE_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Settings:
    root: Path

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def outputs_dir(self) -> Path:
        return self.root / "outputs"

    @property
    def cache_dir(self) -> Path:
        """Prefect's cached task results: in the project, so that a rerun reads them back."""
        return self.outputs_dir / "cache"

    @property
    def storage_url(self) -> str | None:
        """The team's object storage (MLPIPE_STORAGE_URL, tasks/infra/objects.py), else None: what a
        rerun reads back stays on this machine's disk. Never with a password in it: the URL is
        saved in Prefect's blocks and DVC's config, which others read."""
        from tasks.infra.errors import MlpipeError, redact

        url = os.environ.get("MLPIPE_STORAGE_URL", "").strip().rstrip("/") or None
        if url is not None and redact(url) != url:
            raise MlpipeError(
                f"MLPIPE_STORAGE_URL={redact(url)} holds a password: give the storage its credentials "
                "through its own settings (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ~/.aws/config), never the URL"
            )
        return url

    def shared_url(self, path: Path) -> str | None:
        """The object-storage copy of a folder under outputs/ (a candidate's checkpoints), or None."""
        if self.storage_url is None or not path.is_relative_to(self.outputs_dir):
            return None
        return f"{self.storage_url}/{path.relative_to(self.outputs_dir).as_posix()}"

    @property
    def prefect_home(self) -> Path:
        """`mlpipe up`'s Prefect server keeps its database here: the project's runs, no other clone's."""
        return self.root / ".prefect"

    @property
    def mlflow_dir(self) -> Path:
        return self.root / "mlflow"

    @property
    def tracking_uri(self) -> str:
        """The MLflow store. A tracking server's URI comes without its user info: the user and
        password go to MLflow's own variables for basic auth (MLFLOW_TRACKING_USERNAME/_PASSWORD),
        so that no error message, log line or stored link made from the URI holds the password."""
        default = f"sqlite:///{self.mlflow_dir / 'mlflow.db'}"
        uri = os.environ.get("MLFLOW_TRACKING_URI", default)
        if not uri.startswith(("http://", "https://")):
            return uri  # a database URI: SQLAlchemy masks its password itself
        bare, credentials = split_credentials(uri)
        if credentials is not None:
            os.environ.setdefault("MLFLOW_TRACKING_USERNAME", credentials[0])
            os.environ.setdefault("MLFLOW_TRACKING_PASSWORD", credentials[1])
        return bare

    @property
    def sqlite_database(self) -> Path | None:
        """The database file of a SQLite tracking store (the embedded default), else None."""
        uri = self.tracking_uri
        return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None

    @property
    def shown_tracking_uri(self) -> str:
        """The tracking URI as printed and stored: its password masked."""
        from tasks.infra.errors import redact

        return redact(self.tracking_uri)

    @property
    def artifact_location(self) -> str | None:
        """Where a new experiment's artifacts go: a tracking server's own choice (None: its
        `--artifacts-destination`, through its artifact proxy), else where `mlpipe up`'s server
        would keep them."""
        return None if self.tracking_uri.startswith(("http://", "https://")) else self.served_artifacts

    @property
    def served_artifacts(self) -> str:
        """What `mlpipe up`'s MLflow server keeps the artifacts it proxies in."""
        if self.storage_url is not None:
            return f"{self.storage_url}/mlflow-artifacts"
        return (self.mlflow_dir / "artifacts").as_uri()

    def expectation_suite_path(self, dataset: str) -> Path:
        """The project's own suite wins; the suites shipped with mlpipe are the fallback."""
        for folder in (self.root / "expectations", CODE_ROOT / "expectations"):
            path = folder / f"{dataset}.json"
            if path.exists():
                return path
        return self.root / "expectations" / f"{dataset}.json"


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """(the URL without user info, (user, password) or None): to urllib and to a browser,
    http://user:password@host:port is a host and basic-auth credentials."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    if parts.username is None:
        return url, None
    host = parts.netloc.rsplit("@", 1)[1]  # keeps an IPv6 address's brackets and the port
    return parts._replace(netloc=host).geturl(), (unquote(parts.username), unquote(parts.password or ""))


def get_settings() -> Settings:
    return Settings(root=Path(os.environ.get("MLPIPE_ROOT", Path.cwd())).resolve())
