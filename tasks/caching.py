"""Cache keys: a stage reruns only when its data, its settings or its own code changed.

Each key hashes exactly what the stage's result depends on. Validation: the data version and how
its spec reads it, the suite, the check limits, the champion's data it is compared against and the
validation code. Training: the data version and its spec, the split, the candidate's whole
configuration and the code of the networks and the training loop. Prefect stores the results under the project's
outputs/cache, so a rerun with nothing changed reads them back instead of training.
"""

import hashlib
import json
from dataclasses import asdict
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from tasks.settings import CODE_ROOT, Settings

if TYPE_CHECKING:
    from tasks.baseline import BaselineConfig
    from tasks.datasets import Dataset, Split
    from tasks.training import TrainConfig

# The code each stage's result depends on, relative to mlpipe's checkout.
VALIDATION_CODE = ("tasks/validation.py", "tasks/data_checks.py", "tasks/drift.py", "tasks/readers.py")
TRAINING_CODE = (
    "models",
    "tasks/training.py",
    "tasks/fitting.py",
    "tasks/features.py",
    "tasks/readers.py",
    "tasks/baseline.py",
)
SELECTION_CODE = ("tasks/selection.py",)


def code_fingerprint(paths: tuple[str, ...], root: Path = CODE_ROOT) -> str:
    """Hash of the Python sources under `paths`: an edit invalidates results, a commit alone does not."""
    digest = hashlib.sha256()
    for relative in paths:
        path = root / relative
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.relative_to(root)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


@cache
def cached_code_fingerprint(paths: tuple[str, ...]) -> str:
    return code_fingerprint(paths)  # sources do not change under a running process


def digest(*parts: object) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def dataset_signature(dataset: "Dataset") -> str:
    """How the data is read: the spec's text (label and text columns, image shape, scaling, files)
    and what was made of it. Editing a spec changes it, even when the data files stay the same."""
    spec = dataset.spec_path.read_text() if dataset.spec_path is not None else "built in"
    return digest(spec, dataset.label_column, dataset.preprocessing(), dataset.test_fraction)


def validation_key(
    dataset: "Dataset", suite_path: Path, limits: dict | None, reference: dict | None, warn_only: bool
) -> str:
    suite = suite_path.read_text() if suite_path.exists() else "default checks"
    # Drift is checked against the champion's data only when that is another version (tasks/validation.py).
    reference_version = reference.get("data_hash") if reference else None
    if reference_version == dataset.data_hash:
        reference_version = None
    return digest(
        "validation",
        dataset.name,
        dataset.data_hash,
        dataset_signature(dataset),
        suite,
        limits,
        reference_version,
        warn_only,
        cached_code_fingerprint(VALIDATION_CODE),
    )


def training_key(dataset: "Dataset", split: "Split", config: "TrainConfig | BaselineConfig") -> str:
    rows = hashlib.sha256(b"".join(part.tobytes() for part in (split.train, split.val, split.test))).hexdigest()
    return digest(
        "training",
        dataset.name,
        dataset.data_hash,
        dataset_signature(dataset),
        rows,
        asdict(config),
        cached_code_fingerprint(TRAINING_CODE),
    )


def cache_dir(settings: Settings) -> Path:
    """Where Prefect keeps cached task results for this project."""
    return settings.outputs_dir / "cache"


def training_dir(settings: Settings, dataset: str, family: str, key: str) -> Path:
    """A candidate's checkpoints, named by its training key: a killed run resumes from here."""
    return settings.outputs_dir / dataset / "training" / f"{family}-{key[:16]}"
