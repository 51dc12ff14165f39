"""Where the pipeline keeps its files and which stores it talks to.

Everything is relative to the project root (MLPIPE_ROOT, else the working directory), so a
test can point a whole pipeline at a temporary folder. Nothing here touches the disk on import.
"""

import os
from dataclasses import dataclass
from pathlib import Path

# The checkout that holds this code: built-in expectation suites and params.yaml live here.
CODE_ROOT = Path(__file__).resolve().parents[1]


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
    def mlflow_dir(self) -> Path:
        return self.root / "mlflow"

    @property
    def tracking_uri(self) -> str:
        default = f"sqlite:///{self.mlflow_dir / 'mlflow.db'}"
        return os.environ.get("MLFLOW_TRACKING_URI", default)

    @property
    def shown_tracking_uri(self) -> str:
        """The tracking URI as printed and stored: its password masked."""
        from tasks.errors import redact

        return redact(self.tracking_uri)

    @property
    def artifact_location(self) -> str:
        return (self.mlflow_dir / "artifacts").as_uri()

    def expectation_suite_path(self, dataset: str) -> Path:
        """The project's own suite wins; the suites shipped with mlpipe are the fallback."""
        for folder in (self.root / "expectations", CODE_ROOT / "expectations"):
            path = folder / f"{dataset}.json"
            if path.exists():
                return path
        return self.root / "expectations" / f"{dataset}.json"


def get_settings() -> Settings:
    return Settings(root=Path(os.environ.get("MLPIPE_ROOT", Path.cwd())).resolve())
