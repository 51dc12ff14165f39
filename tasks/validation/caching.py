"""Validation's cache key: it runs again only when the data, how its spec reads it, the suite, the
check limits, the champion's data it is compared against or the validation code changed."""

from pathlib import Path

from tasks.infra.fingerprints import cached_code_fingerprint, dataset_signature, digest
from tasks.infra.params import ValidationParams
from tasks.types import Dataset

# All of the validation stage, whose report is pickled in the cache, and how the data is read.
VALIDATION_CODE = ("tasks/types.py", "tasks/data/readers.py", "tasks/validation")


def validation_key(
    dataset: Dataset, suite_path: Path, limits: ValidationParams, reference: dict | None, warn_only: bool
) -> str:
    suite = suite_path.read_text() if suite_path.exists() else "default checks"
    # Drift is checked against the champion's data only when that is another version (checking.py).
    reference_version = reference.get("data_hash") if reference else None
    if reference_version == dataset.data_hash:
        reference_version = None
    return digest(
        "validation",
        dataset.name,
        dataset.data_hash,
        dataset_signature(dataset),
        suite,
        limits.model_dump(),
        reference_version,
        warn_only,
        cached_code_fingerprint(VALIDATION_CODE),
    )
