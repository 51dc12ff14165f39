"""Load a data set (built in, or described by a spec) and version it."""

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from tasks.data.builtin import BUILT_IN, write_digits, write_digits_spec
from tasks.data.versioning import pull, version_data
from tasks.infra.errors import MlpipeError
from tasks.infra.settings import Settings
from tasks.types import Dataset


def load(dataset: str, settings: Settings) -> Dataset:
    """A built-in name, the path of a spec, or the name of a spec in data/<name>.yaml."""
    path = spec_path_of(dataset, settings)
    return _load_digits(settings) if path is None else load_spec(path)


def spec_path_of(dataset: str, settings: Settings) -> Path | None:
    """The spec `dataset` names (None: built in), or one line saying it names none."""
    from tasks.data.spec import is_spec_path

    if dataset in BUILT_IN:
        return None
    path = Path(dataset) if is_spec_path(dataset) else settings.data_dir / f"{dataset}.yaml"
    if not is_spec_path(dataset) and not path.exists():
        raise MlpipeError(
            f"unknown data set {dataset!r}: built-in data sets are {', '.join(BUILT_IN)}; "
            "otherwise pass the path of a data set spec (.yaml)"
        )
    return path if path.is_absolute() else settings.root / path


def known_datasets(settings: Settings) -> list[str]:
    """The names `load` takes without a path: the built-in data sets and the specs in data/."""
    return sorted({*BUILT_IN, *(path.stem for path in settings.data_dir.glob("*.yaml"))})


def load_spec(path: Path) -> Dataset:
    """A data set described by a spec. Next to a spec data/<name>.yaml, a DVC-tracked folder
    data/<name> (`mlpipe data add`) is pulled when missing and its DVC hash is the data version."""
    from tasks.data.readers import read_part
    from tasks.data.spec import read_spec

    dvc_file, folder = path.with_suffix(".dvc"), path.with_suffix("")
    root = _dvc_root(path) if dvc_file.exists() else None
    if root is not None and not folder.exists():
        pull(root, [dvc_file])
    spec = read_spec(path)
    train = read_part(spec, spec.train)
    frame, test_positions, sounds = train.frame, None, train.files
    if spec.test is not None:
        test = read_part(spec, spec.test, like=train)
        if list(test.frame.columns) != list(train.frame.columns):
            raise MlpipeError(f"{spec.test} has other columns than {spec.train}")
        frame = pd.concat([train.frame, test.frame], ignore_index=True)
        test_positions = np.arange(len(train.frame), len(frame))
        sounds = sounds + test.files
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
        else _files_hash([p for p in (spec.train, spec.test) if p is not None] + sounds),
        image_shape=train.image_shape,
        pixel_scale=pixel_scale,
        test_positions=test_positions,
        test_fraction=spec.test_fraction,
        spec_path=path,
        read_notes=train.notes + (test.notes if spec.test is not None else []),
        audio=train.audio,
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
