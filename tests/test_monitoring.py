"""Batch inference's monitoring: a batch against @champion's data and test predictions, in MLflow
and the Prefect UI. (The event it sends, and the retraining that follows: test_triggers.py.)"""

import mlflow
import pandas as pd
import pytest

from tasks.infra.monitoring_params import MonitoringParams
from tasks.monitoring.watch import BatchWatch
from tasks.validation.drift import profile

SERVED = ("digits", "1", "champion")


def watch(reference, frame, counts, served, limits):
    """One batch watched in one chunk, as predict watches each of its chunks."""
    batch = BatchWatch(reference, limits)
    batch.add(frame)
    return batch.result(counts, served)


def counts(labels: pd.Series) -> dict:
    return labels.astype(str).value_counts().to_dict()


@pytest.fixture(scope="module")
def reference(digits, digits_split):
    """digits' profile, with its true test labels standing for a champion's predictions."""
    return profile(digits, digits.frame["label"].iloc[digits_split.test])


def test_a_batch_like_the_test_rows_is_not_drift(reference, digits, digits_split):
    batch = digits.frame.iloc[digits_split.test]

    result = watch(reference, batch[digits.feature_columns], counts(batch["label"]), SERVED, MonitoringParams())

    assert [c.name for c in result.checks] == ["drift.predicted_shift", "drift.feature_psi"]
    assert result.drifted == [] and result.summary() == "no drift past params.yaml's monitoring limits"
    assert result.metrics()["monitor/rows"] == len(batch) and result.metrics()["monitor/drifted"] == 0


def test_shifted_pixels_and_a_lopsided_class_mix_are_drift(reference, digits):
    zeros = digits.frame[digits.frame["label"] == 0]
    inverted = 16 - zeros[digits.feature_columns]  # another scanner: dark digits on light paper

    result = watch(reference, inverted, counts(zeros["label"]), SERVED, MonitoringParams(min_rows=100))

    assert {c.name for c in result.drifted} == {"drift.predicted_shift", "drift.feature_psi"}
    assert "predicted class '0' share moved +90" in result.summary()
    assert result.as_dict()["drifted"] is True


def test_too_few_rows_are_reported_but_never_called_drift(reference, digits):
    zeros = digits.frame[digits.frame["label"] == 0].head(20)

    result = watch(reference, 16 - zeros[digits.feature_columns], counts(zeros["label"]), SERVED, MonitoringParams())

    assert result.checks and not all(c.success for c in result.checks)  # the figures are there
    assert result.drifted == [] and "too few to call drift" in result.summary()


def test_batch_inference_logs_a_monitoring_run_and_a_chart_artifact(own_registry, digits, prefect_api, monkeypatch):
    from prefect_runs import artifacts_of

    from flows.inference import batch_inference

    settings, _ = own_registry
    monkeypatch.setenv("MLPIPE_ROOT", str(settings.root))
    (settings.root / "outputs").mkdir(exist_ok=True)
    zeros = digits.frame[digits.frame["label"].isin([0, 6])]  # past monitoring.min_rows
    (16 - zeros[digits.feature_columns]).to_csv(settings.root / "outputs" / "scanner.csv", index=False)

    state = batch_inference("digits", "outputs/scanner.csv", "outputs/scanner-labelled.csv", return_state=True)
    summary = state.result()

    monitoring = summary["monitoring"]
    assert monitoring["drifted"] and monitoring["event"] == "mlpipe.drift.detected"
    run = mlflow.MlflowClient(settings.tracking_uri).get_run(monitoring["mlflow_run_id"])
    assert run.data.tags["mlpipe.role"] == "monitoring" and run.data.tags["model_version"] == summary["version"]
    assert run.data.metrics["drift/feature_psi"] > 0.25 and run.data.metrics["monitor/rows"] == len(zeros)
    artifacts = {a.path for a in mlflow.MlflowClient(settings.tracking_uri).list_artifacts(run.info.run_id)}
    assert artifacts == {"monitoring.json", "class_mix.png"}
    (artifact,) = artifacts_of(state.state_details.flow_run_id)
    assert artifact.key == "monitoring-digits"
    assert "**Drift detected**" in artifact.data and "█" in artifact.data
    labelled = pd.read_csv(settings.root / "outputs" / "scanner-labelled.csv")
    assert len(labelled) == len(zeros)  # the predictions are written whatever the monitoring finds


def test_twenty_thousand_labels_give_one_bounded_chart_table_and_metric_set(tmp_path):
    """A batch over 20,000 classes: the top classes one by one and the rest as "other" in the
    chart, the table and the metrics; monitoring.json keeps every class; `a?` and `a!` stay two."""
    from tasks.infra.settings import Settings
    from tasks.monitoring.reporting import log_monitoring_run, markdown
    from tasks.monitoring.watch import TOP_CLASSES, Monitoring

    labels = [f"c{i}" for i in range(20_000 - 2)] + ["a?", "a!"]
    predicted = {label: (10 if label in ("a?", "a!") else 1) / (20_000 + 18) for label in labels}
    monitoring = Monitoring("many", "1", "champion", 20_018, predicted, expected=dict(predicted))
    settings = Settings(root=tmp_path)

    run_id = log_monitoring_run(monitoring, settings, tags={})

    client = mlflow.MlflowClient(settings.tracking_uri)
    shares = {k: v for k, v in client.get_run(run_id).data.metrics.items() if k.startswith("predicted_share")}
    assert len(shares) == TOP_CLASSES + 1 and abs(sum(shares.values()) - 1) < 1e-3
    assert len([k for k in shares if k.startswith("predicted_share/a_-")]) == 2  # one per label, each its own
    assert len(mlflow.artifacts.load_dict(f"runs:/{run_id}/monitoring.json")["predicted"]) == 20_000
    table = markdown(monitoring)
    assert f"| other ({20_000 - TOP_CLASSES} classes) |" in table and table.count("\n| ") < TOP_CLASSES + 10


def test_rows_monitoring_cannot_read_end_the_monitoring_not_the_predictions(reference, digits, digits_split):
    batch = digits.frame.iloc[digits_split.test][digits.feature_columns]
    watched = BatchWatch(reference, MonitoringParams())
    assert watched.add_or_give_up(batch.iloc[:100])
    unreadable = batch.iloc[100:].astype(str).replace("0", "zero")
    assert not watched.add_or_give_up(unreadable)  # said once
    assert watched.add_or_give_up(batch.iloc[:10])
    result = watched.result(counts(digits.frame["label"].iloc[digits_split.test]), SERVED)
    assert result.summary().startswith("not monitored: the rows after row 100 could not be compared (")
    assert [c.name for c in result.checks] == ["drift.predicted_shift"]  # the class mix is still compared
