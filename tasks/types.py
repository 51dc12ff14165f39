"""The data types every stage takes: the data set, its split and the candidates' configurations
(each stage's own results live with it: ValidationReport, TrainedModel, Evaluation, Choice, ...).
Plain dataclasses: importing them loads no Prefect, MLflow or torch (nor numpy or pandas, which
only their methods need), so every stage, a training worker and the command line can use them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from tasks.infra.vocabulary import BASELINE, ClassWeighting, Monitor, Strategy

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


@dataclass
class Dataset:
    name: str
    modality: str  # image | sequence | text | audio
    frame: pd.DataFrame  # one row per sample: the features (or text) and the label
    label_column: str
    feature_columns: list[str]  # for text: the one text column
    path: Path
    data_hash: str  # the data version: DVC's hash for built-in data, else the files' md5
    image_shape: tuple[int, int, int] | None = None  # (C, H, W) for images
    pixel_scale: float = 1.0  # raw pixel value that maps to 1.0
    test_positions: np.ndarray | None = None  # rows of an explicit test file
    test_fraction: float = 0.2
    spec_path: Path | None = None  # the spec it was read from (None: made in code)
    read_notes: list[str] = field(default_factory=list)  # what reading changed knowingly (alpha, 16-bit)
    audio: dict | None = None  # sample_rate, clip_samples, align, path_column (tasks/data/sound_files.py)

    @property
    def classes(self) -> list:
        return sorted(self.frame[self.label_column].unique().tolist())

    def class_indices(self, positions: np.ndarray) -> np.ndarray:
        import numpy as np

        index = {c: i for i, c in enumerate(self.classes)}
        return self.frame[self.label_column].iloc[positions].map(index).to_numpy(dtype=np.int64)

    def preprocessing(self) -> dict:
        """What turns raw rows into network inputs (text adds its tokenizer when trained)."""
        info = {"modality": self.modality, "classes": self.classes}
        if self.modality == "text":
            return info | {"text_column": self.feature_columns[0]}
        info["feature_columns"] = self.feature_columns
        if self.modality == "image":
            info |= {"image_shape": list(self.image_shape), "pixel_scale": self.pixel_scale}
        if self.modality == "audio":
            info |= self.audio
        return info


@dataclass
class Split:
    """Row positions of each part; the test part depends only on the data and `split_seed`."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    seeds: dict = field(default_factory=dict)  # split: fixes the test rows; seed: the train/val split
    fractions: dict = field(default_factory=dict)  # test and val, as asked for


@dataclass
class TrainConfig:
    """One network candidate's whole configuration: its cache key, its logged train_config.json
    (what `mlpipe reproduce` retrains from) and what a training worker receives."""

    family: str
    max_epochs: int
    batch_size: int
    patience: int
    seed: int
    monitor: Monitor = "val/loss"  # picks the checkpoint and stops early; a *loss is minimised, else maximised
    class_weighting: ClassWeighting = "sqrt"  # "sqrt": square-rooted inverse class frequency in the loss; "none"
    optimiser: dict = field(default_factory=dict)  # learning_rate, weight_decay
    network: dict = field(default_factory=dict)  # the family's own keyword arguments
    text: dict = field(default_factory=dict)  # tokenizer settings for text: vocab_size, max_length
    devices: int = 1  # more than one trains in worker processes (tasks/training/fit_worker.py)
    strategy: Strategy = "auto"
    accumulate_grad_batches: int = 1  # batches per optimiser step: a larger batch than memory holds
    # > 0: a cross-validated choice's refit on all training and validation rows: this many epochs of
    # the max_epochs schedule, no validation rows, the last weights kept (tasks/evaluation/cross_validation.py).
    refit_epochs: int = 0
    # Where the weights start (tasks/training/starting.py): {} from scratch; a pretrained backbone's
    # source and digest; or the registered version of --init-from, with its run id.
    init: dict = field(default_factory=dict)

    @property
    def init_label(self) -> str:
        """`scratch`, the backbone's name, or the models:/ URI of the version it started from."""
        if "backbone" in self.init:
            return self.init["backbone"]
        if "init_from" in self.init:
            return f"models:/{self.init['name']}/{self.init['version']}"
        return "scratch"


@dataclass
class BaselineConfig:
    seed: int
    settings: dict = field(default_factory=dict)  # params.yaml families.<modality>.baseline, as set there
    family: str = BASELINE


class Candidate(Protocol):
    """What a trained network, the baseline and an ensemble all offer to evaluation and the registry."""

    family: str
    history: list[dict]  # per epoch; empty for the baseline and an ensemble
    fit_seconds: float
    started_at: float  # when its training began and ended (Unix time); 0.0: unknown
    finished_at: float

    @property
    def config(self): ...  # TrainConfig, BaselineConfig or EnsembleConfig

    @property
    def training_key(self) -> str: ...

    @property
    def preprocessing(self) -> dict: ...

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray: ...  # raw rows -> (N, classes)

    def run_params(self) -> dict: ...


def plain(value):
    """A numpy scalar (or a list of them) as plain Python values, for messages and JSON."""
    import numpy as np

    if isinstance(value, list):
        return [plain(v) for v in value]
    return value.item() if isinstance(value, np.generic) else value
