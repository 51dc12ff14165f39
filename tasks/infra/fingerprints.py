"""Hashes that cache keys are made of: of settings, of source code and of how a data set is read."""

import hashlib
import json
from functools import cache
from pathlib import Path

from tasks.infra.settings import CODE_ROOT
from tasks.types import Dataset


def digest(*parts: object) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


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


def dataset_signature(dataset: Dataset) -> str:
    """How the data is read: the spec's text (label and text columns, image shape, scaling, files)
    and what was made of it. Editing a spec changes it, even when the data files stay the same."""
    spec = dataset.spec_path.read_text() if dataset.spec_path is not None else "built in"
    return digest(spec, dataset.label_column, dataset.preprocessing(), dataset.test_fraction)
