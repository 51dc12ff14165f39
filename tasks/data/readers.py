"""Read a data set's files into one table: feature (or text) columns and the label column."""

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tasks.data.spec import DatasetSpec
from tasks.infra.errors import MlpipeError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff"}
# Pixel columns of one image (C*H*W): a 224x224 colour photo would make 150,528 columns, a table
# no classifier here can use. Larger images are refused with a hint to resize them (image_size).
MAX_PIXEL_COLUMNS = 16_384
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


@dataclass
class Table:
    frame: pd.DataFrame
    feature_columns: list[str]
    image_shape: tuple[int, int, int] | None = None
    notes: list[str] = field(default_factory=list)  # what reading changed knowingly (for the validation report)
    audio: dict | None = None  # sample_rate, clip_samples, align, path_column: how every clip was made one length
    files: list[Path] = field(default_factory=list)  # the sound files a table lists: part of the data version


def read_part(spec: DatasetSpec, path: Path, like: Table | None = None) -> Table:
    """One file (or folder) of the spec as a Table, with errors that name the file; `like`: the
    training part, whose sample rate and clip length a test part of sound files takes."""
    try:
        table = _READERS[spec.format](spec, path)
        if spec.modality == "audio":
            table = _audio(spec, path, table, like)
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
        frame = _read_delimited(path, sep="\t", quoting=csv.QUOTE_NONE)
    else:
        frame = _read_delimited(path)
    if spec.modality == "audio":
        return Table(frame, [])  # the files it lists are read by _audio
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


CSV_CHUNK_ROWS = 200_000


def _read_delimited(path: Path, **options) -> pd.DataFrame:
    """A CSV or TSV read in chunks of rows: at its peak, the chunks and the table they make (2
    tables' worth), where one read holds 3 (bench/large_file.py)."""
    chunks = list(pd.read_csv(path, encoding="utf-8", chunksize=CSV_CHUNK_ROWS, **options))
    if len(chunks) == 1:
        return chunks[0]
    if not chunks:  # a header without rows
        return pd.read_csv(path, encoding="utf-8", **options)
    frame = pd.concat(chunks, ignore_index=True)
    del chunks
    return frame


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
    """Class sub-folders of images. Colour mode and size are read from every file's header first:
    any colour image makes the set RGB (a grey one is widened, never the reverse); alpha is
    composited onto white and 16-bit values scaled to 8 bits, each counted in the table's notes."""
    from collections import Counter

    from PIL import Image

    files = sorted(f for f in path.glob("*/*") if f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise MlpipeError(f"{path} has no images in class sub-folders (expected {path}/<class>/<image>.png)")
    headers = {file: _header(file) for file in files}
    colour = any(mode not in GRAY_MODES for mode, _ in headers.values())
    size = spec.image_size
    if size is None:
        sizes = Counter(shape for _, shape in headers.values())
        size = sizes.most_common(1)[0][0]
        odd = next((f for f, (_, shape) in headers.items() if shape != size), None)
        if odd is not None:
            height, width = headers[odd][1]
            raise MlpipeError(f"{odd} is {height}x{width}, others are {size[0]}x{size[1]}: set image_size")
    channels = 3 if colour else 1
    columns = channels * size[0] * size[1]
    if columns > MAX_PIXEL_COLUMNS:
        side = int((MAX_PIXEL_COLUMNS / channels) ** 0.5)
        raise MlpipeError(
            f"{path}: {size[0]}x{size[1]} {'colour' if colour else 'grey'} images make {columns:,} pixel columns, "
            f"more than {MAX_PIXEL_COLUMNS:,}: set image_size (e.g. [{side}, {side}]) in the spec to resize them"
        )
    converted: Counter = Counter()
    pixels, labels = [], []
    for file in files:
        try:
            with Image.open(file) as image:
                image = _to_mode(image, "RGB" if colour else "L", converted)
                if (image.height, image.width) != tuple(size):
                    image = image.resize((size[1], size[0]))
                pixels.append(np.asarray(image, dtype=np.uint8).reshape(-1))
        except OSError as error:
            raise MlpipeError(f"{file} is not a readable image: {error}") from None
        labels.append(file.parent.name)
    # Stored channel-last by Pillow; the network wants (C, H, W).
    array = np.stack(pixels).reshape(len(pixels), size[0], size[1], channels).transpose(0, 3, 1, 2)
    flat = array.reshape(len(array), -1)
    features = [f"p{i}" for i in range(flat.shape[1])]
    frame = pd.DataFrame(flat, columns=features)
    frame[spec.label_column] = labels
    notes = [f"{path}: {count} images {how}" for how, count in sorted(converted.items())]
    if colour and any(mode in GRAY_MODES for mode, _ in headers.values()):
        notes.append(f"{path}: grey images widened to RGB beside the colour ones")
    return Table(frame, features, (channels, size[0], size[1]), notes)


def _read_audio_folder(spec: DatasetSpec, path: Path) -> Table:
    from tasks.data.sound_files import PATH, read_folder

    files, labels = read_folder(path)
    return Table(pd.DataFrame({PATH: [str(f.relative_to(path)) for f in files], spec.label_column: labels}), [])


def _audio(spec: DatasetSpec, path: Path, table: Table, like: Table | None) -> Table:
    """The sound files a folder or manifest names, decoded into sample columns (tasks/data/sound_files.py)."""
    from tasks.data.sound_files import decode_part

    if spec.label_column not in table.frame.columns:
        return table  # read_part names the missing label column
    frame, columns, notes, info, files = decode_part(spec, path, table.frame, like.audio if like else None)
    return Table(frame, columns, notes=table.notes + notes, audio=info, files=files)


def _header(file: Path) -> tuple[str, tuple[int, int]]:
    """(mode, (height, width)) from the file's header, without decoding its pixels."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as image:
            return image.mode, (image.height, image.width)
    except (UnidentifiedImageError, OSError) as error:
        raise MlpipeError(f"{file} is not a readable image: {error}") from None


def _to_mode(image, mode: str, converted):
    """`image` in `mode` (L or RGB) as 8-bit pixels; what was changed on the way is counted."""
    from PIL import Image

    if image.mode.startswith("I") or image.mode == "F":  # 16 bits of grey: scaled, not clipped at 255
        values = np.asarray(image, dtype=np.float64)
        if image.mode == "F" or values.min() < 0 or values.max() > 65535:
            raise MlpipeError(f"{image.filename}: a {image.mode} image beyond 16 bits: convert the set to 8 or 16 bits")
        image = Image.fromarray(np.round(values / 65535.0 * 255.0).astype(np.uint8), "L")
        converted["of 16 bits scaled to 8"] += 1
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    if has_alpha:
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image.convert("RGBA"))
        converted["with an alpha channel composited onto white"] += 1
    return image.convert(mode)


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
    "audio-folder": _read_audio_folder,
}
