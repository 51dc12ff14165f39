"""Read sound files into a table: one row per clip, its samples as feature columns.

Every clip is decoded once (soundfile: WAV of 8 to 32-bit PCM or float, FLAC, what else
libsndfile reads), mixed to mono by the mean of its channels, resampled to one rate (scipy's
polyphase filter) and padded with silence or cropped to one length (models/waveforms.py), so the
networks, the classical baseline and the row checks see a plain numeric table, as for a time
series. Each row also keeps what validation and drift look at (duration, source rate, loudness,
clipping) and its file, as an absolute path: a model of another sample rate or clip length (the
champion, re-scored on new data) reads the file itself. The served model turns file paths or
arrays of samples into samples the same way (models/waveforms.py).
"""

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from tasks.infra.errors import MlpipeError

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".mp3"}  # what libsndfile reads
MIN_CLIP_SECONDS = 0.1  # the spectrogram's window and the CNN's pooling need a few frames
MAX_SAMPLE_COLUMNS = 48_000  # 3 s at 16 kHz: past that, lower sample_rate or clip_seconds
PATH = "path"  # the file column of an audio-folder table (a manifest names its own: path_column)
# What each row keeps besides its samples: validation (tasks/validation/row_checks.py) and drift read them.
DURATION, SOURCE_RATE, RMS, PEAK, CLIPPED = "duration_s", "source_rate_hz", "rms", "peak", "clipped_share"
CLIP_COLUMNS = (DURATION, SOURCE_RATE, RMS, PEAK, CLIPPED)
FULL_SCALE = 0.999  # a sample at or beyond this magnitude is taken as clipped
CLIP_PERCENTILE = 95  # the default clip length covers this share of the training clips whole


def read_folder(path: Path) -> tuple[list[Path], list[str]]:
    """Class sub-folders of sound files: (files, labels)."""
    files = sorted(f for f in path.glob("*/*") if f.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise MlpipeError(f"{path} has no sound files in class sub-folders (expected {path}/<class>/<clip>.wav)")
    return files, [f.parent.name for f in files]


def listed_files(frame: pd.DataFrame, column: str, folder: Path, source: Path) -> list[Path]:
    """The files `column` of `source` lists, relative to `folder`; an absolute path, a '..', a
    path that leaves the folder (after links) or names no file is refused with the row it is on."""
    if column not in frame.columns:
        raise MlpipeError(f"{source} has no path column {column!r} (columns: {list(frame.columns)[:8]})")
    folder, files = folder.resolve(), []
    for row, value in enumerate(frame[column].tolist()):
        if not isinstance(value, str) or not value.strip():
            raise MlpipeError(f"{source}: row {row} has no file in {column!r}")
        file = (folder / value).resolve()
        if Path(value).is_absolute() or ".." in Path(value).parts or not file.is_relative_to(folder):
            raise MlpipeError(f"{source}: row {row}: {value!r} leaves the data folder {folder}: list files under it")
        if not file.is_file():
            raise MlpipeError(f"{source}: row {row}: {value!r} does not exist")
        files.append(file)
    return files


def with_absolute_files(rows: pd.DataFrame, column: str, table: Path) -> pd.DataFrame:
    """A table of rows to label (batch inference) with the sound files of `column`, relative to
    the table's own folder, made absolute; refused as in reading a data set."""
    if column not in rows.columns:
        return rows  # the samples themselves, in an `audio` column
    files = listed_files(rows, column, table.parent, table)
    return rows.assign(**{column: [str(f) for f in files]})


def decode(file: Path) -> tuple[np.ndarray, int]:
    """(mono float32 samples, sample rate), or one line naming the file that cannot be read."""
    from models.waveforms import read_sound

    try:
        return read_sound(file)
    except ValueError as error:
        raise MlpipeError(str(error)) from None


def clip_figures(samples: np.ndarray, rate: int) -> dict[str, float]:
    """What validation and drift look at, measured on the clip as recorded (before resampling)."""
    magnitude = np.abs(samples)
    return {
        DURATION: len(samples) / rate,
        SOURCE_RATE: float(rate),
        RMS: float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if len(samples) else 0.0,
        PEAK: float(magnitude.max()) if len(samples) else 0.0,
        CLIPPED: float(np.mean(magnitude >= FULL_SCALE)) if len(samples) else 0.0,
    }


def read_clips(files: list[Path]) -> tuple[list[np.ndarray], list[int], pd.DataFrame]:
    """Every file decoded: (samples, rates, each clip's figures)."""
    samples, rates, figures = [], [], []
    for file in files:
        mono, rate = decode(file)
        samples.append(mono)
        rates.append(rate)
        figures.append(clip_figures(mono, rate))
    return samples, rates, pd.DataFrame(figures, columns=list(CLIP_COLUMNS))


def choose_format(rates: list[int], durations: np.ndarray, sample_rate: int | None, clip_seconds: float | None):
    """(sample rate, clip length in samples, notes): the spec's, or from the data: the most
    common rate and the CLIP_PERCENTILE-th percentile of the durations, rounded up to 10 ms."""
    notes = []
    if sample_rate is None:
        sample_rate = Counter(rates).most_common(1)[0][0]
        notes.append(f"sample rate {sample_rate} Hz: the most common in the data (set sample_rate to choose)")
    others = Counter(r for r in rates if r != sample_rate)
    if others:
        mixed = ", ".join(f"{count} at {rate} Hz" for rate, count in sorted(others.items()))
        notes.append(f"{mixed} resampled to {sample_rate} Hz")
    if clip_seconds is None:
        clip_seconds = max(float(np.ceil(np.percentile(durations, CLIP_PERCENTILE) * 100) / 100), MIN_CLIP_SECONDS)
        notes.append(
            f"clips of {clip_seconds:g} s: {CLIP_PERCENTILE}% of the clips are as short or shorter "
            "(set clip_seconds to choose)"
        )
    length = int(round(clip_seconds * sample_rate))
    if length > MAX_SAMPLE_COLUMNS:
        raise MlpipeError(
            f"clips of {clip_seconds:g} s at {sample_rate} Hz make {length:,} sample columns, more than "
            f"{MAX_SAMPLE_COLUMNS:,}: set clip_seconds or sample_rate in the spec to fewer"
        )
    return sample_rate, length, notes


def sample_columns(length: int) -> list[str]:
    return [f"s{i}" for i in range(length)]


def audio_table(clips: list[np.ndarray], rates: list[int], sample_rate: int, length: int, align: str) -> pd.DataFrame:
    """(clips, length) float32 samples at `sample_rate` as the feature columns s0..s{length-1}."""
    from models.waveforms import waveform

    info = {"sample_rate": sample_rate, "clip_samples": length, "align": align}
    rows = np.zeros((len(clips), length), dtype=np.float32)
    for i, (samples, rate) in enumerate(zip(clips, rates, strict=True)):
        rows[i] = waveform(samples, rate, info)
    return pd.DataFrame(rows, columns=sample_columns(length))


def decode_part(spec, path: Path, frame: pd.DataFrame, like: dict | None):
    """A folder's or manifest's table with its clips decoded: (the table with the sample columns
    first and each clip's figures last, the sample columns, notes, how the clips were made one
    length, the files read). `like`: the training part's sample rate and length, for a test part."""
    column = PATH if spec.format == "audio-folder" else spec.path_column
    if frame.empty:
        raise MlpipeError(f"{path} has no rows")
    folder = path if spec.format == "audio-folder" else path.parent  # where the table's paths start
    files = listed_files(frame, column, folder, path)
    clips, rates, figures = read_clips(files)
    if like is None:
        durations = figures[DURATION].to_numpy()
        rate, length, notes = choose_format(rates, durations, spec.sample_rate, spec.clip_seconds)
        notes = [f"{path}: {note}" for note in notes]
    else:
        rate, length, notes = like["sample_rate"], like["clip_samples"], []
        resampled = sum(r != rate for r in rates)
        if resampled:
            notes.append(f"{path}: {resampled} clips resampled to {rate} Hz")
    samples = audio_table(clips, rates, rate, length, spec.clip_align)
    kept = frame.drop(columns=[c for c in CLIP_COLUMNS if c in frame.columns]).reset_index(drop=True)
    kept[column] = [str(f) for f in files]  # absolute: read again by a model of another format
    info = {"sample_rate": rate, "clip_samples": length, "align": spec.clip_align, "path_column": column}
    return pd.concat([samples, kept, figures], axis=1), list(samples.columns), notes, info, files
