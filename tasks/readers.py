"""Read a data set's files into one table: feature (or text) columns and the label column."""

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tasks.errors import MlpipeError
from tasks.spec import DatasetSpec

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff"}


@dataclass
class Table:
    frame: pd.DataFrame
    feature_columns: list[str]
    image_shape: tuple[int, int, int] | None = None


def read_part(spec: DatasetSpec, path: Path) -> Table:
    """One file (or image folder) of the spec as a Table, with errors that name the file."""
    try:
        table = _READERS[spec.format](spec, path)
    except MlpipeError:
        raise
    except pd.errors.EmptyDataError:
        raise MlpipeError(f"{path} is empty") from None
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as error:
        message = " ".join(str(error).split())
        raise MlpipeError(f"{path} cannot be read as {spec.format}: {message}") from None
    if table.frame.empty:
        raise MlpipeError(f"{path} has no rows")
    if spec.label_column not in table.frame.columns:
        raise MlpipeError(
            f"{path} has no label column {spec.label_column!r} (columns: {list(table.frame.columns)[:8]})"
        )
    return table


def _read_table(spec: DatasetSpec, path: Path) -> Table:
    if spec.format == "parquet":
        frame = pd.read_parquet(path)
    elif spec.format == "tsv":
        # Tab-separated text rarely quotes; a stray quote must not swallow the lines after it.
        frame = pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE, encoding="utf-8")
    else:
        frame = pd.read_csv(path, encoding="utf-8")
    if spec.modality == "text":
        if spec.label_column not in frame.columns:
            return Table(frame, [])  # read_part names the missing label column
        if spec.text_column not in frame.columns:
            raise MlpipeError(f"{path} has no text column {spec.text_column!r} (columns: {list(frame.columns)[:8]})")
        frame[spec.text_column] = frame[spec.text_column].fillna("").astype(str)
        return Table(frame[[spec.text_column, spec.label_column]], [spec.text_column])
    features = [c for c in frame.columns if c != spec.label_column]
    shape = spec.image_shape or (_square_shape(len(features), path) if spec.modality == "image" else None)
    return Table(frame, features, shape)


def _read_ucr(spec: DatasetSpec, path: Path) -> Table:
    values = pd.read_csv(path, sep=r"\s+", header=None, dtype="float64")
    features = [f"t{i}" for i in range(values.shape[1] - 1)]
    frame = pd.DataFrame(values.iloc[:, 1:].to_numpy(), columns=features)
    labels = values.iloc[:, 0]
    frame.insert(0, spec.label_column, labels.astype("int64") if (labels % 1 == 0).all() else labels)
    return Table(frame, features)


def _read_npz(spec: DatasetSpec, path: Path) -> Table:
    with np.load(path, allow_pickle=False) as arrays:
        keys = set(arrays.files)
        x_key = next((k for k in ("x", "X", "data", "images") if k in keys), None)
        y_key = next((k for k in ("y", "labels", "label", "target") if k in keys), None)
        if x_key is None or y_key is None:
            raise MlpipeError(f"{path} needs arrays named x and y (found {sorted(keys)})")
        x, y = arrays[x_key], arrays[y_key]
    if len(x) != len(y):
        raise MlpipeError(f"{path}: x has {len(x)} samples but y has {len(y)}")
    shape = None
    if spec.modality == "image":
        shape = spec.image_shape or ((1, *x.shape[1:]) if x.ndim == 3 else tuple(x.shape[1:]))
        if len(shape) != 3:
            raise MlpipeError(f"{path}: images must be (N, H, W) or (N, C, H, W), not {x.shape}")
    flat = x.reshape(len(x), -1)
    features = [f"v{i}" for i in range(flat.shape[1])]
    frame = pd.DataFrame(flat, columns=features)
    frame[spec.label_column] = y
    return Table(frame, features, shape)


def _read_image_folder(spec: DatasetSpec, path: Path) -> Table:
    from PIL import Image, UnidentifiedImageError

    files = sorted(f for f in path.glob("*/*") if f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise MlpipeError(f"{path} has no images in class sub-folders (expected {path}/<class>/<image>.png)")
    size = spec.image_size
    pixels, labels, mode = [], [], None
    for file in files:
        try:
            with Image.open(file) as image:
                mode = mode or ("L" if image.mode in ("1", "L", "I;16", "I") else "RGB")
                image = image.convert(mode)
                size = size or (image.height, image.width)
                if (image.height, image.width) != tuple(size):
                    if spec.image_size is None:
                        raise MlpipeError(
                            f"{file} is {image.height}x{image.width}, others are {size[0]}x{size[1]}: set image_size"
                        )
                    image = image.resize((size[1], size[0]))
                pixels.append(np.asarray(image, dtype=np.uint8).reshape(-1))
        except (UnidentifiedImageError, OSError) as error:
            raise MlpipeError(f"{file} is not a readable image: {error}") from None
        labels.append(file.parent.name)
    channels = 1 if mode == "L" else 3
    # Stored channel-last by Pillow; the network wants (C, H, W).
    array = np.stack(pixels).reshape(len(pixels), size[0], size[1], channels).transpose(0, 3, 1, 2)
    flat = array.reshape(len(array), -1)
    features = [f"p{i}" for i in range(flat.shape[1])]
    frame = pd.DataFrame(flat, columns=features)
    frame[spec.label_column] = labels
    return Table(frame, features, (channels, size[0], size[1]))


def _square_shape(count: int, path: Path) -> tuple[int, int, int]:
    side = int(round(count**0.5))
    if side * side != count:
        raise MlpipeError(f"{path}: {count} pixel columns are not a square image: set image_shape in the spec")
    return (1, side, side)


_READERS = {
    "csv": _read_table,
    "tsv": _read_table,
    "parquet": _read_table,
    "ucr": _read_ucr,
    "npz": _read_npz,
    "image-folder": _read_image_folder,
}
