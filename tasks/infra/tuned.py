"""`params/<name>.yaml`: what `mlpipe tune` decided for a data set, per family: the best trial's
settings when they beat params.yaml's on the check rows, else none. Every later run of that data
set reads them over params.yaml's family sections; dvc.yaml's training
stage lists the file among its params, so new settings retrain the data set in `dvc repro`."""

from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field

from tasks.infra.base_params import Section
from tasks.infra.errors import MlpipeError
from tasks.infra.files import write_atomic
from tasks.infra.params import raise_as_params_error
from tasks.infra.settings import Settings
from tasks.infra.vocabulary import NetworkFamily

HEADER = (
    "# Written by `mlpipe tune`: per family, the best trial's settings when they beat params.yaml's\n"
    "# on validation rows the study did not choose by (else none: `kept: defaults`). Every run of\n"
    "# this data set takes them over params.yaml's families (delete a family to go back).\n"
)


class Tuned(Section):
    """A family's tuned settings and where they came from."""

    settings: dict = Field(default_factory=dict)  # checked like a family section when a run uses them
    study: str
    trial: int = Field(ge=0)  # the best trial on the search rows
    kept: Literal["tuned", "defaults"] = "tuned"  # "defaults": its settings did not beat them; none are used
    why: str = ""  # the verdict's reason: the check rows' figures, or what was missing
    val_accuracy: float = Field(ge=0, le=1)  # the best trial's, on the search rows
    check_accuracy: float | None = Field(None, ge=0, le=1)  # the best trial's, on the check rows
    defaults_check_accuracy: float | None = Field(None, ge=0, le=1)  # params.yaml's settings', on the check rows
    trials: int = Field(0, ge=0)  # finished and pruned trials of the study when it was written

    def source(self) -> str:
        """Where a run's settings came from, for its tags."""
        if self.kept == "defaults":
            return f"study {self.study}: params.yaml's settings kept ({self.why})"
        return f"study {self.study}, trial {self.trial}"


def tuned_path(settings: Settings, dataset: str) -> Path:
    return settings.root / "params" / f"{dataset}.yaml"


def read_tuned(settings: Settings, dataset: str) -> dict[str, Tuned]:
    """family -> its tuned settings; empty when the data set was never tuned."""
    path = tuned_path(settings, dataset)
    if not path.exists():
        return {}
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise MlpipeError(f"{path} is not valid YAML: {error}".splitlines()[0]) from None
    if not isinstance(raw, dict):
        raise MlpipeError(f"{path} must hold a mapping of families")
    found = {}
    for family, entry in raw.items():
        with raise_as_params_error(f"{path}: {family}"):
            found[_network_family(family, path)] = Tuned.model_validate(entry)
    return found


def write_tuned(settings: Settings, dataset: str, family: str, tuned: Tuned) -> Path:
    """The family's entry replaced, the others kept (two studies of one data set may end at once)."""
    from filelock import FileLock

    path = tuned_path(settings, dataset)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path.with_name(f".{path.name}.lock")):
        entries = {f: t.model_dump() for f, t in read_tuned(settings, dataset).items()} | {family: tuned.model_dump()}
        return write_atomic(path, HEADER + yaml.safe_dump(entries, sort_keys=True))


def ensure_tuned_file(settings: Settings, dataset: str) -> Path:
    """An empty file for a data set never tuned: dvc.yaml's stage needs the file to exist."""
    path = tuned_path(settings, dataset)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, HEADER + "{}\n")
    return path


def _network_family(name: str, path: Path) -> str:
    from typing import get_args

    if name not in get_args(NetworkFamily):
        raise MlpipeError(f"{path}: {name!r} is not a network family ({', '.join(get_args(NetworkFamily))})")
    return name
