"""Load a data set (built in, or described by a spec), version it and split it."""

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.errors import MlpipeError
from tasks.files import write_atomic
from tasks.retrying import transient_retries
from tasks.settings import Settings, get_settings
from tasks.versioning import pull, version_data

BUILT_IN = ("digits",)


@dataclass
class Dataset:
    name: str
    modality: str  # image | sequence | text
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

    @property
    def classes(self) -> list:
        return sorted(self.frame[self.label_column].unique().tolist())

    def class_indices(self, positions: np.ndarray) -> np.ndarray:
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
        return info


@dataclass
class Split:
    """Row positions of each part; the test part depends only on the data and `split_seed`."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    seeds: dict = field(default_factory=dict)  # split: fixes the test rows; seed: the train/val split
    fractions: dict = field(default_factory=dict)  # test and val, as asked for


DIGITS_SPEC = {
    "name": "digits",
    "modality": "image",
    "format": "parquet",
    "train": "digits/digits.parquet",
    "image_shape": [1, 8, 8],
    "pixel_scale": 16.0,
    "description": "scikit-learn's 8x8 handwritten digits (UCI), 1797 images of 10 classes",
}


def write_digits(folder: Path) -> Path:
    """scikit-learn's 8x8 digits as one Parquet table (pixel_0..pixel_63, 0..16, and label), and
    its spec beside the folder unless there is one."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    frame = pd.DataFrame(digits.data.astype("int64"), columns=[f"pixel_{i}" for i in range(64)])
    frame["label"] = digits.target.astype("int64")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "digits.parquet"
    frame.to_parquet(path, index=False)
    write_digits_spec(folder)
    return path


def write_digits_spec(folder: Path) -> Path:
    """data/digits.yaml (tracked in git in mlpipe's own checkout), unless there is one."""
    import yaml

    spec = folder.with_suffix(".yaml")
    if not spec.exists():
        write_atomic(spec, yaml.safe_dump(DIGITS_SPEC, sort_keys=False))
    return spec


def load(dataset: str, settings: Settings) -> Dataset:
    """A built-in name, the path of a spec, or the name of a spec in data/<name>.yaml."""
    from tasks.spec import is_spec_path

    if dataset in BUILT_IN:
        return _load_digits(settings)
    path = Path(dataset) if is_spec_path(dataset) else settings.data_dir / f"{dataset}.yaml"
    if not is_spec_path(dataset) and not path.exists():
        raise MlpipeError(
            f"unknown data set {dataset!r}: built-in data sets are {', '.join(BUILT_IN)}; "
            "otherwise pass the path of a data set spec (.yaml)"
        )
    return load_spec(path if path.is_absolute() else settings.root / path)


def load_spec(path: Path) -> Dataset:
    """A data set described by a spec. Next to a spec data/<name>.yaml, a DVC-tracked folder
    data/<name> (`mlpipe data add`) is pulled when missing and its DVC hash is the data version."""
    from tasks.readers import read_part
    from tasks.spec import read_spec

    dvc_file, folder = path.with_suffix(".dvc"), path.with_suffix("")
    root = _dvc_root(path) if dvc_file.exists() else None
    if root is not None and not folder.exists():
        pull(root, [dvc_file])
    spec = read_spec(path)
    train = read_part(spec, spec.train)
    frame, test_positions = train.frame, None
    if spec.test is not None:
        test = read_part(spec, spec.test)
        if list(test.frame.columns) != list(train.frame.columns):
            raise MlpipeError(f"{spec.test} has other columns than {spec.train}")
        frame = pd.concat([train.frame, test.frame], ignore_index=True)
        test_positions = np.arange(len(train.frame), len(frame))
    labels = frame[spec.label_column]
    if labels.isna().any():
        raise MlpipeError(f"{path}: {int(labels.isna().sum())} rows have no {spec.label_column!r}")
    _one_label_type(labels, path)
    if labels.iloc[: len(train.frame)].nunique() < 2:
        raise MlpipeError(f"{spec.train}: a single class ({labels.iloc[0]!r}); a classifier needs at least two")
    pixel_scale = spec.pixel_scale or _pixel_scale(frame, train.feature_columns, spec.modality)
    return Dataset(
        name=spec.name,
        modality=spec.modality,
        frame=frame,
        label_column=spec.label_column,
        feature_columns=train.feature_columns,
        path=spec.train,
        data_hash=version_data(root, folder)
        if root is not None
        else _files_hash([p for p in (spec.train, spec.test) if p is not None]),
        image_shape=train.image_shape,
        pixel_scale=pixel_scale,
        test_positions=test_positions,
        test_fraction=spec.test_fraction,
        spec_path=path,
        read_notes=train.notes + (test.notes if spec.test is not None else []),
    )


def _one_label_type(labels: pd.Series, spec: Path) -> None:
    """Labels 2 and "2" are different classes that no one meant: refuse a column that mixes kinds."""
    import numbers

    if labels.dtype != object:
        return
    kinds = {}
    for value in labels.drop_duplicates():
        kind = (
            "bool"
            if isinstance(value, bool)
            else "number"
            if isinstance(value, numbers.Number)
            else type(value).__name__
        )
        kinds.setdefault(kind, value)
    if len(kinds) > 1:
        examples = ", ".join(f"{value!r} ({kind})" for kind, value in kinds.items())
        raise MlpipeError(
            f"{spec}: label column {labels.name!r} mixes types: {examples}; write every label the same way"
        )


def _dvc_root(path: Path) -> Path | None:
    return next((folder for folder in path.resolve().parents if (folder / ".dvc").is_dir()), None)


def _load_digits(settings: Settings) -> Dataset:
    """Read through its spec, like any other data set; the folder is a dvc.yaml stage's output,
    so DVC's hash of it is the data version."""
    folder = settings.data_dir / "digits"
    if not (folder / "digits.parquet").exists():
        write_digits(folder)
    dataset = load_spec(write_digits_spec(folder))
    dataset.data_hash = version_data(settings.root, folder)
    return dataset


def _pixel_scale(frame: pd.DataFrame, columns: list[str], modality: str) -> float:
    if modality != "image":
        return 1.0
    return 1.0 if float(frame[columns].to_numpy().max()) <= 1.0 else 255.0


def _files_hash(paths: list[Path]) -> str:
    """md5 of the files' bytes (a single file's equals DVC's hash of it)."""
    digest = hashlib.md5()
    files = [f for p in paths for f in (sorted(p.rglob("*")) if p.is_dir() else [p]) if f.is_file()]
    for file in files:
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def split(
    labels: np.ndarray,
    test_fraction: float,
    val_fraction: float,
    split_seed: int,
    seed: int,
    test_positions: np.ndarray | None = None,
) -> Split:
    """Stratified split. The test part is fixed (an explicit test file, or `split_seed`) so
    every run is scored on the same rows; the train/val part follows the training `seed`."""
    from sklearn.model_selection import train_test_split

    positions = np.arange(len(labels))
    if test_positions is not None:
        test = test_positions
        rest = np.setdiff1d(positions, test_positions)
    else:
        _check_stratifiable(labels, test_fraction, "test")
        rest, test = train_test_split(positions, test_size=test_fraction, stratify=labels, random_state=split_seed)
    _check_stratifiable(labels[rest], val_fraction, "val")
    train, val = train_test_split(rest, test_size=val_fraction, stratify=labels[rest], random_state=seed)
    return Split(
        train=np.sort(train),
        val=np.sort(val),
        test=np.sort(test),
        seeds={"split": split_seed, "seed": seed},
        fractions={"test": None if test_positions is not None else test_fraction, "val": val_fraction},
    )


def _check_stratifiable(labels: np.ndarray, fraction: float, part: str) -> None:
    """A stratified part needs a row of every class and every class two rows: say so with the
    numbers, before scikit-learn fails inside."""
    import math

    values, counts = np.unique(labels, return_counts=True)
    rows = math.ceil(fraction * len(labels))
    if rows < len(values) or len(labels) - rows < len(values):
        need = len(values) / len(labels)
        raise MlpipeError(
            f"split: {part}_fraction {fraction} of {len(labels)} rows gives {rows} {part} rows for {len(values)} "
            f"classes; each part needs a row of every class: use {part}_fraction >= {need:.3f} "
            f"(and <= {1 - need:.3f}) or more rows"
        )
    if counts.min() < 2:
        rare = values[counts.argmin()]
        raise MlpipeError(f"split: class {plain(rare)!r} has a single row; a stratified {part} part needs two")


def plain(value):
    """A numpy scalar as the Python value it holds (for messages and JSON)."""
    return value.item() if isinstance(value, np.generic) else value


# Retried while another process holds DVC's lock (TransientError); bad data fails at once.
@task(
    name="load_dataset",
    cache_policy=NO_CACHE,
    **transient_retries(4),
)
def load_dataset(dataset: str) -> Dataset:
    return load(dataset, get_settings())


@task(name="split_dataset", cache_policy=NO_CACHE)
def split_dataset(dataset: Dataset, split_params: dict, seed: int) -> Split:
    labels = dataset.frame[dataset.label_column].to_numpy()
    test_fraction = split_params["test_fraction"] if dataset.name in BUILT_IN else dataset.test_fraction
    return split(
        labels, test_fraction, split_params["val_fraction"], split_params["seed"], seed, dataset.test_positions
    )
