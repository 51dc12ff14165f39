"""A candidate's cache key and folders: it trains again only when its data, its settings or the
training code changed. Prefect keeps the results under the project's outputs/cache (Settings.cache_dir),
so a rerun with nothing changed reads them back instead of training."""

import hashlib
from dataclasses import asdict
from pathlib import Path

from tasks.infra.fingerprints import cached_code_fingerprint, dataset_signature, digest
from tasks.infra.settings import Settings
from tasks.types import BaselineConfig, Dataset, Split, TrainConfig

# The code a trained candidate depends on, relative to mlpipe's checkout: all of the training stage,
# whose results are pickled in the cache, and what it is made of.
TRAINING_CODE = ("models", "tasks/types.py", "tasks/data/readers.py", "tasks/training")


def training_key(dataset: Dataset, split: Split, config: TrainConfig | BaselineConfig) -> str:
    """The data version and its spec, the split, the candidate's whole configuration and the code."""
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


def training_dir(settings: Settings, dataset: str, family: str, key: str) -> Path:
    """A candidate's checkpoints, named by its training key: a killed run resumes from here."""
    return settings.outputs_dir / dataset / "training" / f"{family}-{key[:16]}"
