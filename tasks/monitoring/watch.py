"""One batch's figures against @champion's profile: drift of its rows from the champion's data,
and of its predicted class mix from the champion's predictions of the test rows.

The profile is what validation's drift check reads (tasks/validation/drift.py), kept with each
registered version, so nothing of the training data is restored to compare.
"""

import hashlib
import re
from dataclasses import asdict, dataclass, field

import pandas as pd

from tasks.infra.monitoring_params import MonitoringParams
from tasks.validation import drift
from tasks.validation.row_checks import CheckResult

METRIC_UNSAFE = re.compile(r"[^\w.\-/: ]")  # what an MLflow metric name may not hold
TOP_CLASSES = 30  # classes a chart, a table and the metrics show one by one; the rest sum to "other"
OTHER = "other"


@dataclass
class Monitoring:
    dataset: str
    version: str
    alias: str
    rows: int
    predicted: dict[str, float]  # the batch's predicted class mix
    expected: dict[str, float] | None  # the champion's predictions of its test rows; None: an older version
    checks: list[CheckResult] = field(default_factory=list)
    judged: bool = True  # False: too few rows to call drift (min_rows)
    failure: str | None = None  # why the batch's features could not be compared

    @property
    def drifted(self) -> list[CheckResult]:
        return [check for check in self.checks if not check.success] if self.judged else []

    def metrics(self) -> dict[str, float]:
        """MLflow metric names: `monitor/rows`, `drift/<check>`, `predicted_share/<class>` for the
        top classes and `predicted_share_other` for the rest (monitoring.json keeps every class)."""
        figures = {"monitor/rows": float(self.rows), "monitor/drifted": float(bool(self.drifted))}
        figures |= {f"drift/{c.name.removeprefix('drift.')}": float(c.observed) for c in self.checks}
        shown, other = top_classes(self.predicted, self.expected)
        figures |= {f"predicted_share/{metric_label(c)}": self.predicted.get(c, 0.0) for c in shown}
        return figures | ({"predicted_share_other": sum(self.predicted.get(c, 0.0) for c in other)} if other else {})

    def summary(self) -> str:
        said = self._checks_said()
        return f"{self.failure}; {said}" if self.failure else said

    def _checks_said(self) -> str:
        if not self.checks:
            return f"nothing compared: v{self.version} keeps no profile of its data (registered before profiles were)"
        if not self.judged:
            return f"{self.rows} rows: too few to call drift (monitoring.min_rows)"
        failed = self.drifted
        return "; ".join(c.message for c in failed) if failed else "no drift past params.yaml's monitoring limits"

    def as_dict(self) -> dict:
        checks = [c.as_dict() for c in self.checks]
        return {**asdict(self), "checks": checks, "drifted": bool(self.drifted), "summary": self.summary()}


def metric_label(label: str) -> str:
    """A label as MLflow takes it in a metric name (letters, digits, _ - . / : and spaces), the
    same in every run; one that had to change ends in a hash of itself, so `a?` and `a!` stay two."""
    safe = METRIC_UNSAFE.sub("_", label)
    return safe if safe == label else f"{safe}-{hashlib.sha256(label.encode()).hexdigest()[:8]}"


def top_classes(predicted: dict[str, float], expected: dict[str, float] | None) -> tuple[list[str], list[str]]:
    """The TOP_CLASSES classes with the largest share in the batch or the champion's predictions,
    in label order, and the others: 20,000 labels are no chart and no table."""
    expected = expected or {}
    labels = sorted(set(predicted) | set(expected))
    if len(labels) <= TOP_CLASSES:
        return labels, []
    shown = set(sorted(labels, key=lambda c: -max(predicted.get(c, 0.0), expected.get(c, 0.0)))[:TOP_CLASSES])
    return [c for c in labels if c in shown], [c for c in labels if c not in shown]


class BatchWatch:
    """A batch's monitoring gathered chunk by chunk as `predict` reads it (tasks/registry/batch_scoring.py):
    the file is read once, and memory does not grow with its length."""

    def __init__(self, reference: dict | None, limits: MonitoringParams):
        self.reference, self.limits = reference, limits
        self.features, self.failure, self.rows = None, None, 0
        if reference is not None:
            # An older profile does not name its columns: a table's are the features it binned; a text's is unknown.
            self.columns = reference.get("columns") or list(reference.get("features", {}))

    def add(self, frame: pd.DataFrame) -> None:
        if self.reference is not None:
            if self.features is None:  # the columns the batch shares with the profile, known from its first rows
                columns = [c for c in self.columns if c in frame.columns]
                self.features = drift.FeatureDrift(self.reference, columns, self.limits)
            self.features.add(frame)
        self.rows += len(frame)

    def add_or_give_up(self, frame: pd.DataFrame) -> bool:
        """add(); rows monitoring cannot read (a sound that does not decode, a feature that is no
        number) end the batch's monitoring, never its predictions. False the one time it gives up."""
        if self.failure is not None:
            return True
        try:
            self.add(frame)
        except Exception as error:  # noqa: BLE001 - whatever it was, the labels are still written
            reason = " ".join(str(error).split())[:200]
            self.failure = f"not monitored: the rows after row {self.rows:,} could not be compared ({reason})"
            return False
        return True

    def result(self, counts: dict, served: tuple[str, str, str]) -> Monitoring:
        """The figures, with `counts` of the labels the model `served` (data set, version, alias) gave."""
        dataset, version, alias = served
        rows = sum(counts.values())
        predicted = {str(label): count / (rows or 1) for label, count in counts.items()}
        result = Monitoring(dataset, version, alias, rows, predicted, None, judged=rows >= self.limits.min_rows)
        result.failure = self.failure
        if self.reference is None:
            return result
        result.expected = self.reference.get("predictions")
        if result.expected is not None:
            shift = drift.share_shift(
                "predicted_shift",
                result.expected,
                predicted,
                self.limits.predicted_shift,
                "the champion's test predictions",
                what="predicted class",
            )
            result.checks.append(shift)
        if self.features is not None and self.failure is None:
            result.checks += self.features.checks()
        return result


def watch_for(limits: MonitoringParams):
    """What batch inference calls with the served version's run: a BatchWatch of its profile."""

    def watch_version(run_id: str) -> BatchWatch:
        from tasks.registry.store import version_profile

        return BatchWatch(version_profile(run_id), limits)

    return watch_version
