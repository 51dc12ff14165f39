"""Checks of sound clips, from the figures each row keeps of its clip as recorded
(tasks/data/sound_files.py): silence, clipping, a sample rate far from the rest, a clip too long.
A file that cannot be read, is truncated, is missing or lies outside the data folder never
becomes a row: reading refuses it, naming the file."""

import numpy as np

from tasks.data.sound_files import CLIPPED, DURATION, RMS, SOURCE_RATE
from tasks.infra.validation_params import ChecksParams
from tasks.types import Dataset
from tasks.validation.row_checks import CheckResult

SILENCE_RMS = 1e-4  # -80 dBFS: nothing but the noise floor of 16-bit audio
CLIPPED_SHARE = 0.01  # a clip with more samples than this at full scale is clipped


def audio_checks(dataset: Dataset, limits: ChecksParams) -> list[CheckResult]:
    frame, files = dataset.frame, dataset.frame[dataset.audio["path_column"]].astype(str).to_numpy()
    return [
        _share(
            "silent_clips",
            frame[RMS].to_numpy() < SILENCE_RMS,
            files,
            limits.max_silent_fraction,
            "are silent or empty (RMS below -80 dBFS)",
        ),  # fmt: skip
        _share(
            "clipped_clips",
            frame[CLIPPED].to_numpy() > CLIPPED_SHARE,
            files,
            limits.max_clipped_fraction,
            f"are clipped (over {CLIPPED_SHARE:.0%} of their samples at full scale)",
        ),  # fmt: skip
        _rates(frame[SOURCE_RATE].to_numpy(), files, dataset.audio["sample_rate"], limits.max_rate_ratio),
        _durations(frame[DURATION].to_numpy(), files, limits.max_clip_seconds),
    ]


def _share(name: str, bad: np.ndarray, files: np.ndarray, maximum: float, what: str) -> CheckResult:
    count = int(bad.sum())
    ok = count <= maximum * len(bad)
    detail = f"{count} of {len(bad)} clips {what}"
    if count:
        detail += f", first {files[bad.argmax()]}"
    if not ok:
        detail += f": more than {maximum:.1%}"
    return CheckResult(name, ok, count, detail)


def _rates(rates: np.ndarray, files: np.ndarray, target: int, ratio: float) -> CheckResult:
    """A clip recorded at a rate far from the data's most common one (not from the rate they are
    resampled to, which a spec may set far below the recordings')."""
    values, counts = np.unique(rates, return_counts=True)
    usual = values[counts.argmax()]
    far = (rates > usual * ratio) | (rates < usual / ratio)
    detail = f"sample rates {int(rates.min())}..{int(rates.max())} Hz, resampled to {target} Hz"
    if far.any():
        first = far.argmax()
        detail = (
            f"{int(far.sum())} clips recorded at a rate more than {ratio:g}x off the usual {int(usual)} Hz, "
            f"first {files[first]} at {int(rates[first])} Hz: another source, or a wrong header"
        )
    return CheckResult("sample_rates", not far.any(), sorted({int(r) for r in rates}), detail)


def _durations(durations: np.ndarray, files: np.ndarray, maximum: float) -> CheckResult:
    longest = int(durations.argmax())
    ok = durations[longest] <= maximum
    detail = f"longest clip {files[longest]} lasts {durations[longest]:.2f} s"
    return CheckResult("clip_durations", ok, round(float(durations[longest]), 3),
                       detail + ("" if ok else f", more than max_clip_seconds {maximum:g}"))  # fmt: skip
