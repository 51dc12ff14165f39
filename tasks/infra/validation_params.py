"""params.yaml's `validation` section: the gate before training."""

from typing import Literal

from pydantic import Field

from tasks.infra.base_params import Section as _Section


class ChecksParams(_Section):
    """Row-level checks (tasks/validation/row_checks.py)."""

    max_duplicate_fraction: float = Field(0.1, ge=0, le=1)  # identical rows (features and label); sms_spam has 7 %
    max_leakage_fraction: float = Field(0.0, ge=0, le=1)  # rows of an explicit test file also in its train file
    min_class_count: int = Field(5, ge=1)  # samples of the rarest class outside the test part
    max_text_chars: int = Field(10_000, ge=1)  # longer texts are almost always a broken file, not a message
    max_blank_fraction: float = Field(0.0, ge=0, le=1)  # texts of whitespace only: a network sees only padding
    max_clip_seconds: float = Field(60.0, gt=0)  # audio: a longer recording is a session to cut, not a clip
    max_silent_fraction: float = Field(0.0, ge=0, le=1)  # audio: clips without a sample above -80 dBFS RMS
    max_clipped_fraction: float = Field(0.05, ge=0, le=1)  # audio: clips with over 1% of samples at full scale
    max_rate_ratio: float = Field(4.0, ge=1)  # audio: a clip recorded at a rate this many times off the data's


class FeatureDriftLimits(_Section):
    """How far new rows' features may move from the champion's data: training's drift check and
    batch inference's monitoring (monitoring_params.py) share these limits' meaning and defaults."""

    feature_psi: float = Field(0.25, ge=0)  # population stability index of the worst feature (0.25: major)
    text_length_psi: float = Field(0.25, ge=0)  # population stability index of the texts' lengths
    oov_rate: float = Field(0.2, ge=0, le=1)  # share of the new words that the champion's data never had


class DriftParams(FeatureDriftLimits):
    """Drift from the champion's data (tasks/validation/drift.py)."""

    action: Literal["fail", "warn"] = "fail"  # fail: drift stops the run like a failed expectation; warn: go on
    label_shift: float = Field(0.1, ge=0, le=1)  # largest change in any class's share of the rows


class ValidationParams(_Section):
    checks: ChecksParams = Field(default_factory=ChecksParams)
    drift: DriftParams = Field(default_factory=DriftParams)
