"""params.yaml's `monitoring` and `retraining` sections (tasks/monitoring, `mlpipe serve`'s triggers)."""

from typing import Literal

from pydantic import Field

from tasks.infra.base_params import Section
from tasks.infra.validation_params import FeatureDriftLimits

DATA_UPDATED = "mlpipe.data.updated"  # `mlpipe data add` made a new version of a data set
DRIFT_DETECTED = "mlpipe.drift.detected"  # batch inference's monitoring found a batch past its limits
Event = Literal["mlpipe.data.updated", "mlpipe.drift.detected"]


class MonitoringParams(FeatureDriftLimits):
    """What batch inference calls drift: a batch's rows against @champion's data, its predicted
    class mix against @champion's predictions of the test rows."""

    min_rows: int = Field(200, ge=1)  # a smaller batch is reported, never called drifted: PSI on a few rows is noise
    predicted_shift: float = Field(0.15, ge=0, le=1)  # largest change in a predicted class's share


class RetrainingParams(Section):
    """The events that start a scheduled data set's training deployment (`mlpipe serve`)."""

    events: list[Event] = Field(default_factory=lambda: [DATA_UPDATED, DRIFT_DETECTED])  # empty: the schedule only
    debounce_seconds: int = Field(
        300, ge=0
    )  # after an event starts a run, the data set's next events in this wait start none
