"""Sound files or arrays of samples -> fixed-length mono waveforms at one sample rate.

Reading a data set (tasks/data/sound_files.py) and the served model both go through these functions,
so a clip is turned into samples the same way when training and when serving.
"""

from pathlib import Path

import numpy as np


def read_sound(file: Path | str) -> tuple[np.ndarray, int]:
    """(mono float32 samples in [-1, 1], sample rate): WAV (8 to 32-bit PCM or float), FLAC, or
    what else libsndfile reads; the mean of the channels. A file that cannot be read, or holds
    fewer frames than its header promises, raises ValueError naming it."""
    import soundfile

    try:
        with soundfile.SoundFile(str(file)) as sound:
            rate, samples = sound.samplerate, sound.read(dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, OSError, TypeError) as error:
        raise ValueError(f"{file} is not a readable sound file: {' '.join(str(error).split())}") from None
    short = _missing_wav_bytes(Path(file))
    if short:  # libsndfile reads what is there and says nothing
        raise ValueError(f"{file} is truncated: its header promises {short[0]} bytes of samples, it holds {short[1]}")
    return samples.mean(axis=1), rate


def _missing_wav_bytes(file: Path) -> tuple[int, int] | None:
    """(bytes of samples a WAV's data chunk declares, bytes the file holds) when it holds fewer."""
    import struct

    size = file.stat().st_size
    with file.open("rb") as handle:
        head = handle.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        position = 12
        while position + 8 <= size:
            handle.seek(position)
            chunk, length = handle.read(4), struct.unpack("<I", handle.read(4))[0]
            if chunk == b"data":
                held = size - position - 8
                unknown = length in (0, 0xFFFFFFFF)  # a stream's writer could not know it
                return (length, held) if not unknown and length > held else None
            position += 8 + length + (length & 1)
    return None


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """`samples` at `rate` Hz -> at `target` Hz (polyphase, with its anti-aliasing filter)."""
    if rate == target or len(samples) == 0:
        return samples
    from math import gcd

    from scipy.signal import resample_poly

    step = gcd(rate, target)
    return resample_poly(samples, target // step, rate // step).astype(np.float32)


def fit_length(samples: np.ndarray, length: int, align: str) -> np.ndarray:
    """Padded with silence or cropped to `length`: `start` keeps the beginning (pads or crops the
    end), `center` keeps the middle (pads or crops both ends evenly)."""
    extra = len(samples) - length
    if extra >= 0:
        start = extra // 2 if align == "center" else 0
        return samples[start : start + length]
    before = -extra // 2 if align == "center" else 0
    return np.pad(samples, (before, length - len(samples) - before))


def waveform(samples: np.ndarray, rate: int, info: dict) -> np.ndarray:
    """One clip as the model reads it: at info's sample rate, info's length."""
    resampled = resample(np.asarray(samples, dtype=np.float32), rate, info["sample_rate"])
    return fit_length(resampled, info["clip_samples"], info["align"])


def from_files(paths: list, info: dict) -> np.ndarray:
    """Sound files -> (N, clip_samples) float32, as the model was trained on. The caller confines
    the paths (tasks/data/sound_files.py)."""
    rows = np.zeros((len(paths), info["clip_samples"]), dtype=np.float32)
    for i, path in enumerate(paths):
        rows[i] = waveform(*read_sound(path), info)
    return rows


def from_arrays(values: list, info: dict) -> np.ndarray:
    """Arrays of samples at info's sample rate (mono, or channels by samples either way round;
    floats in [-1, 1], or integer PCM) -> (N, clip_samples) float32. A string is no array: sound
    files go in the path column, whose paths are checked."""
    rows = np.zeros((len(values), info["clip_samples"]), dtype=np.float32)
    for i, value in enumerate(values):
        if isinstance(value, (str, bytes, Path)):
            raise ValueError(f"row {i} of the audio column holds {type(value).__name__}, not samples")
        samples = np.asarray(value)
        if np.issubdtype(samples.dtype, np.integer):  # PCM: full scale maps to 1.0, as soundfile reads it
            samples = samples / float(np.iinfo(samples.dtype).max + 1)
        if samples.ndim == 2:  # the shorter axis holds the channels
            samples = samples.mean(axis=0 if samples.shape[0] < samples.shape[1] else 1)
        if samples.ndim != 1:
            raise ValueError(f"row {i} of the audio column has shape {samples.shape}: give (samples,) or 2-D")
        rows[i] = waveform(samples.astype(np.float32), info["sample_rate"], info)
    return rows
