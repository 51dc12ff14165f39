"""Load a data set, version it with DVC and split it into train/val/test."""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.errors import MlpipeError
from tasks.settings import Settings, get_settings
from tasks.versioning import track_with_dvc

BUILT_IN = ("digits",)


@dataclass
class Dataset:
    name: str
    modality: str  # image | sequence | text
    frame: pd.DataFrame  # one row per sample: the features and the label
    label_column: str
    feature_columns: list[str]
    path: Path
    data_hash: str  # the DVC hash of `path`: the data version
    image_shape: tuple[int, int, int] | None = None  # (C, H, W) for image tables
    pixel_scale: float = 1.0  # raw pixel value that maps to 1.0

    @property
    def classes(self) -> list:
        return sorted(self.frame[self.label_column].unique().tolist())

    def preprocessing(self) -> dict:
        """What the served model needs to turn raw rows into network inputs."""
        return {
            "modality": self.modality,
            "feature_columns": self.feature_columns,
            "image_shape": list(self.image_shape) if self.image_shape else None,
            "pixel_scale": self.pixel_scale,
            "classes": self.classes,
        }


@dataclass
class Split:
    """Row positions of each part; the test part depends only on `split_seed`."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    seeds: dict = field(default_factory=dict)


def write_digits(folder: Path) -> Path:
    """scikit-learn's 8x8 digits as one Parquet table: pixel_0..pixel_63 (0..16) and label."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    frame = pd.DataFrame(digits.data.astype("int64"), columns=[f"pixel_{i}" for i in range(64)])
    frame["label"] = digits.target.astype("int64")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "digits.parquet"
    frame.to_parquet(path, index=False)
    return path


def load(name: str, settings: Settings) -> Dataset:
    if name not in BUILT_IN:
        raise MlpipeError(f"unknown data set {name!r}: built-in data sets are {', '.join(BUILT_IN)}")
    folder = settings.data_dir / name
    table = folder / "digits.parquet"
    if not table.exists():
        write_digits(folder)
    data_hash = track_with_dvc(settings.root, folder)
    frame = pd.read_parquet(table)
    return Dataset(
        name=name,
        modality="image",
        frame=frame,
        label_column="label",
        feature_columns=[c for c in frame.columns if c != "label"],
        path=folder,
        data_hash=data_hash,
        image_shape=(1, 8, 8),
        pixel_scale=16.0,
    )


def split(labels: np.ndarray, test_fraction: float, val_fraction: float, split_seed: int, seed: int) -> Split:
    """Stratified split. The test part is fixed by `split_seed` so every run is scored on the
    same rows; the train/val part follows the training `seed`."""
    from sklearn.model_selection import train_test_split

    positions = np.arange(len(labels))
    rest, test = train_test_split(positions, test_size=test_fraction, stratify=labels, random_state=split_seed)
    train, val = train_test_split(rest, test_size=val_fraction, stratify=labels[rest], random_state=seed)
    return Split(train=np.sort(train), val=np.sort(val), test=np.sort(test), seeds={"split": split_seed, "seed": seed})


def arrays(dataset: Dataset, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Network inputs and class indices of the given rows."""
    from models.preprocessing import images_from_table

    rows = dataset.frame.iloc[positions]
    x = images_from_table(rows[dataset.feature_columns].to_numpy(), dataset.image_shape, dataset.pixel_scale)
    class_index = {c: i for i, c in enumerate(dataset.classes)}
    y = rows[dataset.label_column].map(class_index).to_numpy(dtype=np.int64)
    return x, y


@task(name="load_dataset", cache_policy=NO_CACHE)
def load_dataset(name: str) -> Dataset:
    return load(name, get_settings())


@task(name="split_dataset", cache_policy=NO_CACHE)
def split_dataset(dataset: Dataset, split_params: dict, seed: int) -> Split:
    labels = dataset.frame[dataset.label_column].to_numpy()
    return split(labels, split_params["test_fraction"], split_params["val_fraction"], split_params["seed"], seed)
