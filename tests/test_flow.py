"""The whole training flow under Prefect's test harness, with real GX, Lightning, MLflow and DVC."""

import asyncio
import csv
import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from conftest import SHARED_DATASETS
from prefect_runs import prefect_client

from flows.training import training_pipeline
from tasks.infra.errors import ValidationFailed
from tasks.infra.settings import Settings


def _flow_run(flow_run_id: str):
    from prefect.client.orchestration import get_client

    async def read():
        async with get_client() as client:
            return await client.read_flow_run(uuid.UUID(flow_run_id))

    return asyncio.run(read())


def test_the_pipeline_validates_trains_evaluates_and_registers(prefect_api, workspace):
    registration = training_pipeline(dataset="digits", models=["cnn"], max_epochs=2, seed=3)

    settings = Settings(root=workspace)
    client = mlflow.MlflowClient(settings.tracking_uri)
    version = client.get_model_version_by_alias("digits", "champion")
    assert registration.version == str(version.version) == "1"
    assert set(registration.candidate_run_ids) == {"cnn", "baseline"}  # the baseline competes in every run

    run = client.get_run(registration.candidate_run_ids["cnn"])
    assert 0.5 < run.data.metrics["test/accuracy"] <= 1.0
    assert "test/f1_macro" in run.data.metrics
    assert [m.step for m in client.get_metric_history(run.info.run_id, "epoch/val_loss")] == [0, 1]
    # val/* are the kept weights' figures, which the curves (ending at the last epoch) show at train/best_epoch.
    curve = client.get_metric_history(run.info.run_id, "epoch/val_accuracy")
    val_rows = int(client.get_run(registration.parent_run_id).data.params["dataset.rows.val"])
    kept = curve[int(run.data.metrics["train/best_epoch"])].value
    assert run.data.metrics["val/accuracy"] == pytest.approx(kept, abs=1.01 / val_rows)
    assert {"val/loss", "val/f1_macro", "train/seconds"} <= set(run.data.metrics)
    assert all(float(f"{value:.6g}") == value for value in run.data.metrics.values())  # no float noise
    assert run.data.params["max_epochs"] == "2" and run.data.params["seed"] == "3"

    # Chosen on the validation rows: the registered family has the best validation accuracy.
    runs = {family: client.get_run(run_id).data for family, run_id in registration.candidate_run_ids.items()}
    val = {family: data.metrics["val/accuracy"] for family, data in runs.items()}
    assert registration.promoted and registration.best_family == max(val, key=val.get)
    assert version.tags["family"] == registration.best_family
    parent = client.get_run(registration.parent_run_id).data
    assert parent.tags["selected_family"] == registration.best_family and parent.tags["selected_by"] == "val/accuracy"
    # The parent run has the chosen candidate's figures, under the same names: one column in the runs table.
    chosen = runs[registration.best_family].metrics
    assert {name: parent.metrics[name] for name in ("val/accuracy", "test/accuracy")} == {
        name: chosen[name] for name in ("val/accuracy", "test/accuracy")
    }
    # Few tags on a version: what versions are found by; the lineage is on its run.
    assert set(version.tags) == {
        *("family", "validation", "candidates_key", "data_hash", "git_sha", "prefect_flow_run_id"),
        *("promotion", "promotion.decision", "promotion.challenger_accuracy"),
        "init",  # where the weights started (scratch here)
    }
    assert version.tags["init"] == "scratch"
    assert f"| family | {registration.best_family} |" in version.description
    assert f"| test/accuracy | {chosen['test/accuracy']:.4f} |" in version.description
    assert runs[registration.best_family].tags["selected"] == "true"
    assert runs["baseline"].params["estimator"] == "SVC(rbf, C=10) on pixels"

    data_hash = yaml.safe_load((workspace / "data" / "digits.dvc").read_text())["outs"][0]["md5"]
    assert version.tags["data_hash"] == data_hash.removesuffix(".dir")
    assert version.tags["validation"].startswith("passed: ")
    report_path = version.tags["validation"].removeprefix("passed: ")
    assert report_path.startswith(str(workspace / "outputs" / "digits"))

    flow_run = _flow_run(version.tags["prefect_flow_run_id"])
    assert flow_run.state.is_completed()
    assert flow_run.parameters["max_epochs"] == 2

    # Named for what they are, alike in Prefect and MLflow; the data set in MLflow's dataset panel.
    assert re.fullmatch(r"digits-cnn-\d{4}-\d\d-\d\dT\d{4}", flow_run.name)
    parent_run = client.get_run(registration.parent_run_id)
    assert parent_run.info.run_name == flow_run.name
    assert client.get_run(registration.candidate_run_ids["cnn"]).info.run_name == "digits/cnn"
    # A candidate's run lasts as long as its training did, inside its pipeline run.
    cnn = client.get_run(registration.candidate_run_ids["cnn"]).info
    assert (cnn.end_time - cnn.start_time) / 1000 >= run.data.metrics["train/seconds"]
    assert parent_run.info.start_time <= cnn.start_time < cnn.end_time <= parent_run.info.end_time
    (logged,) = parent_run.inputs.dataset_inputs
    assert (logged.dataset.name, logged.dataset.digest) == ("digits", version.tags["data_hash"][:12])
    _assert_the_contracts_page_documents_every_name(registration, settings)


def test_reports_that_cannot_be_published_do_not_undo_a_registered_decision(prefect_api, workspace, monkeypatch):
    import tasks.registry.leaderboard

    calls = []

    def unreachable(registration, settings):
        calls.append(registration.version)
        raise ConnectionError("the Prefect API stopped answering")  # as after a restart of the server

    monkeypatch.setattr(tasks.registry.leaderboard, "publish", unreachable)
    state = training_pipeline(dataset="digits", models=["cnn"], max_epochs=1, return_state=True)
    registration = state.result()

    assert state.is_completed() and calls == ["1"]  # publishing was tried and failed: the run still succeeded
    messages = [log.message for log in _flow_run_logs(state.state_details.flow_run_id)]
    assert any(m.startswith("reports not published to the Prefect UI: ") for m in messages), messages
    client = mlflow.MlflowClient(Settings(root=workspace).tracking_uri)
    version = client.get_model_version_by_alias("digits", "champion")
    assert registration.promoted and str(version.version) == registration.version == "1"
    assert version.tags["promotion.decision"] == "promoted" and version.tags["promotion"].startswith("champion: ")


def _flow_run_logs(flow_run_id) -> list:
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.client.schemas.sorting import LogSort

    from tasks.infra.prefect_private import drain_prefect_workers

    drain_prefect_workers()
    with prefect_client() as client:
        found = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
        return client.read_logs(log_filter=found, sort=LogSort.TIMESTAMP_ASC)


def test_broken_data_stops_the_flow_before_training(prefect_api, workspace, digits):
    table = workspace / "data" / "digits" / "digits.parquet"
    table.parent.mkdir(parents=True)
    broken = digits.frame.copy()
    broken.loc[5, "pixel_10"] = 99
    broken.to_parquet(table, index=False)

    state = training_pipeline(dataset="digits", max_epochs=1, return_state=True)

    with pytest.raises(ValidationFailed, match=r"expect_column_values_to_be_between\(pixel_10\) 1 unexpected"):
        state.result()
    assert not list((workspace / "outputs" / "digits").glob("*/cnn"))  # nothing trained
    assert not (workspace / "mlflow" / "mlflow.db").exists()  # nothing logged or registered
    # The Prefect UI says it once: the run's state is the message, and one error line adds the traceback.
    assert state.message.startswith("validation failed for digits: 1 of ")
    logs = _flow_run_logs(state.state_details.flow_run_id)
    (error,) = [log for log in logs if log.level >= 40]
    assert error.message.startswith(state.message + "\nTraceback (most recent call last):")
    assert [log.message for log in logs if state.message in log.message] == [
        error.message,
        f"Finished in state Failed({state.message!r})",
    ]


def _sms_spec(folder: Path) -> Path:
    sms = pd.read_csv(SHARED_DATASETS / "sms_spam.tsv", sep="\t", quoting=csv.QUOTE_NONE)
    sms.groupby("Label").head(200).to_csv(folder / "sms.csv", index=False)
    spec = {
        "name": "sms_small",
        "modality": "text",
        "format": "csv",
        "train": "sms.csv",
        "label_column": "Label",
        "text_column": "SMS",
    }
    (folder / "sms.yaml").write_text(yaml.safe_dump(spec))
    return folder / "sms.yaml"


def test_a_text_spec_is_trained_and_served_on_raw_strings(prefect_api, workspace, tmp_path):
    spec = _sms_spec(tmp_path)
    registration = training_pipeline(dataset=str(spec), models=["cnn", "rnn"], max_epochs=2)

    assert registration.dataset == "sms_small" and registration.version == "1"
    # (an ensemble joins them only when two of them come close on the validation rows)
    assert {"cnn", "rnn", "baseline"} <= set(registration.candidate_run_ids)
    script = f"""
import json, mlflow, pandas as pd
mlflow.set_tracking_uri({Settings(root=workspace).tracking_uri!r})
model = mlflow.pyfunc.load_model("models:/sms_small@champion")
texts = ["WINNER!! You have won a free prize, call 09061701461 to claim now", "ok see you at lunch"]
print(json.dumps(model.predict(pd.DataFrame({{"SMS": texts}}))["label"].tolist()))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd="/")
    assert done.returncode == 0, done.stderr
    labels = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(labels) == 2 and set(labels) <= {"ham", "spam"}


def test_two_process_ddp_logs_one_set_of_metrics_and_one_version(prefect_api, workspace):
    # Two CPU processes over gloo: rank zero's checkpoint and history reach MLflow, once.
    registration = training_pipeline(dataset="digits", models=["cnn"], max_epochs=4, seed=3, devices=2, strategy="ddp")

    client = mlflow.MlflowClient(Settings(root=workspace).tracking_uri)
    run = client.get_run(registration.candidate_run_ids["cnn"])
    assert run.data.tags["world_size"] == "2" and run.data.params["devices"] == "2"
    # Each rank trained on its half of the training rows, every epoch (DistributedSampler pads to even).
    per_rank = [int(n) for n in run.data.tags["samples_per_rank"].split(",")]
    train_rows = int(client.get_run(registration.parent_run_id).data.params["dataset.rows.train"])
    assert len(per_rank) == 2 and all(abs(n - 4 * train_rows / 2) <= 4 for n in per_rank), per_rank
    assert [m.step for m in client.get_metric_history(run.info.run_id, "epoch/val_accuracy")] == [0, 1, 2, 3]
    assert len(client.get_metric_history(run.info.run_id, "test/accuracy")) == 1
    assert run.data.metrics["test/accuracy"] > 0.8  # both halves of the data trained one model
    experiment = client.get_experiment_by_name("digits")
    assert len(client.search_runs([experiment.experiment_id])) == 3  # the parent, the CNN and the baseline
    assert [v.version for v in client.search_model_versions("name='digits'")] == [1]


def test_reports_drift_gate_and_warn_only(prefect_api, workspace):
    """A valid run keeps its reports; data that drifted from the champion's stops the next run,
    unless --warn-only, which trains and says so in the tags of both runs."""
    from prefect.client.orchestration import get_client

    first = training_pipeline(dataset="digits", models=["cnn"], max_epochs=1, seed=3)
    client = mlflow.MlflowClient(Settings(root=workspace).tracking_uri)
    parent = [a.path for a in client.list_artifacts(first.parent_run_id, "validation")]
    assert parent == ["validation/data_docs.html", "validation/validation.json"]
    profile = mlflow.artifacts.load_dict(f"runs:/{first.candidate_run_ids[first.best_family]}/data/profile.json")
    assert set(profile["labels"]) == {str(d) for d in range(10)}

    async def validation_artifact():
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

        async with get_client() as prefect:
            return await prefect.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["validation-digits"]))
            )

    (artifact,) = [
        a
        for a in asyncio.run(validation_artifact())
        if str(a.flow_run_id) == client.get_run(first.parent_run_id).data.tags["prefect_flow_run_id"]
    ]
    assert "# Validation of `digits`: passed" in artifact.data

    table = workspace / "data" / "digits" / "digits.parquet"
    frame = pd.read_parquet(table)
    frame[frame["label"] != 3].to_parquet(table, index=False)  # a class went missing upstream
    with pytest.raises(ValidationFailed, match=r"drift.label_shift: class '3' share moved -10.2%"):
        training_pipeline(dataset="digits", models=["cnn"], max_epochs=1)
    assert [v.version for v in client.search_model_versions("name='digits'")] == [1]

    second = training_pipeline(dataset="digits", models=["cnn"], max_epochs=1, warn_only=True)
    version = client.get_model_version("digits", second.version)
    assert version.tags["validation"].startswith("failed (warn-only): ")
    assert client.get_run(second.parent_run_id).data.tags["validation.warn_only"] == "true"
    assert "validation-failed-warn-only" in _flow_run(version.tags["prefect_flow_run_id"]).tags
    # Registered for inspection, never crowned, so never the next run's drift reference either.
    assert not second.promoted and "--warn-only" in version.tags["promotion"]
    assert str(client.get_model_version_by_alias("digits", "champion").version) == "1"


KILLED_AFTER_REGISTERING = """
import os, signal
import tasks.registry.promotion

def killed(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)  # kill -9: the version exists, the gate has not decided

tasks.registry.promotion.decide_promotion = killed
from flows.cli.app import app
app(["run", "--dataset", "digits", "--models", "cnn", "--max-epochs", "1"])
"""


def test_a_run_killed_after_registering_is_finished_by_the_next_identical_run(prefect_api, workspace):
    import os

    env = {**os.environ, "MLPIPE_ROOT": str(workspace)}
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_REGISTERING], env=env, capture_output=True, text=True, timeout=600
    )
    assert killed.returncode == -9, killed.stderr[-2000:]
    client = mlflow.MlflowClient(Settings(root=workspace).tracking_uri)
    (version,) = client.search_model_versions("name='digits'")
    assert "promotion" not in version.tags and client.get_registered_model("digits").aliases == {}

    registration = training_pipeline(dataset="digits", models=["cnn"], max_epochs=1)
    assert (registration.version, registration.promoted, registration.reused) == ("1", True, False)
    assert registration.reason.startswith("champion: first version")
    assert client.get_model_version("digits", "1").tags["promotion.decision"] == "promoted"
    assert client.get_registered_model("digits").aliases == {"champion": 1, "challenger": 1}
    assert set(registration.candidate_run_ids) == {"cnn", "baseline"}

    again = training_pipeline(dataset="digits", models=["cnn"], max_epochs=1)
    assert again.reused and again.version == "1"  # nothing left to finish


CONTRACTS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "reference" / "contracts.md"


def _documented_names(heading: str) -> list[str]:
    """The names in backticks in the first column of the tables under `## heading` of the contracts page."""
    section = CONTRACTS_PAGE.read_text().split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|") and not line.startswith("|---")]
    return [name for row in rows for name in re.findall(r"`([^`]+)`", row.split("|")[1])]


def _undocumented(names, heading: str) -> set[str]:
    """The names no entry under `heading` covers; `epoch/<name>` covers every `epoch/...`."""
    patterns = [
        re.compile("".join(".+" if part.startswith("<") else re.escape(part) for part in re.split(r"(<[^>]+>)", d)))
        for d in _documented_names(heading)
    ]
    return {name for name in names if not any(p.fullmatch(name) for p in patterns)}


def _ours(tags) -> set[str]:
    return {tag for tag in tags if not tag.startswith("mlflow.")}  # MLflow's own tags are not mlpipe's contract


def _assert_the_contracts_page_documents_every_name(registration, settings: Settings) -> None:
    """The names a run leaves in MLflow are those docs/reference/contracts.md documents."""
    from tasks.registry.leaderboard import leaderboard

    client = mlflow.MlflowClient(settings.tracking_uri)
    version = client.get_model_version("digits", registration.version)
    candidates = [client.get_run(run_id).data for run_id in registration.candidate_run_ids.values()]  # cnn, baseline
    parent = client.get_run(registration.parent_run_id).data

    assert _undocumented(version.tags, "Tags of a registered version") == set()
    assert any(name.startswith("epoch/") for c in candidates for name in c.metrics)  # the cnn's curves
    for candidate in candidates:
        assert _undocumented(candidate.metrics, "Metrics of a candidate run") == set()
        assert _undocumented(_ours(candidate.tags), "Tags of a candidate run") == set()
    assert _undocumented(parent.metrics, "Metrics of a candidate run") == set()  # the chosen one's, same names
    assert {"selected_family", "selected_by"} <= set(parent.tags)
    assert _undocumented(_ours(parent.tags), "Tags of a pipeline run") == set()
    roles = {parent.tags["mlpipe.role"], *(c.tags["mlpipe.role"] for c in candidates)}
    assert _undocumented(roles, "Where the names live") == set()
    model = client.get_registered_model("digits")
    assert model.aliases and _undocumented(model.aliases, "Aliases") == set()
    assert _undocumented(model.tags, "Registered-model tags") == set()
    fields = {key for row in leaderboard("digits", settings) for key in row}  # `mlpipe compare --format json`
    assert fields and _undocumented(fields, "`mlpipe compare --format json` fields") == set()
