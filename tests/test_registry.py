import json
import subprocess
import sys
from dataclasses import replace

import mlflow
import pytest

from tasks.errors import MlpipeError
from tasks.evaluation import evaluate
from tasks.registry import leaderboard, register
from tasks.settings import CODE_ROOT, Settings
from tasks.validation import validate

LINEAGE = {"git_sha": "abc123", "git_dirty": "false", "prefect_flow_run_id": "none"}


@pytest.fixture
def registered(workspace, trained_cnn, digits, digits_split, tmp_path):
    """Register the same CNN three times with scores 0.95, 0.90, 0.97 (as if retrained)."""
    settings = Settings(root=workspace)
    report_path = tmp_path / "validation.json"
    report = validate(digits.frame, "digits", CODE_ROOT / "expectations" / "digits.json", report_path)
    evaluation = evaluate(trained_cnn, digits, digits_split, tmp_path)
    results = []
    for accuracy in (0.95, 0.90, 0.97):
        scored = replace(evaluation, metrics={"test/accuracy": accuracy, "test/f1_macro": accuracy - 0.01})
        results.append(register(digits, digits_split, report, report_path, [(trained_cnn, scored)], LINEAGE, settings))
    return settings, results


def test_champion_moves_only_to_a_better_version(registered):
    settings, (first, worse, better) = registered
    client = mlflow.MlflowClient(settings.tracking_uri)

    assert (first.version, worse.version, better.version) == ("1", "2", "3")
    assert first.promoted and not worse.promoted and better.promoted
    assert worse.champion_version == "1"
    assert "not promoted: test/accuracy 0.9000 <= champion v1's 0.9500" in worse.reason
    assert client.get_model_version("digits", "2").tags["promotion"] == worse.reason
    assert str(client.get_model_version_by_alias("digits", "champion").version) == "3"
    assert str(client.get_model_version_by_alias("digits", "challenger").version) == "3"


def test_versions_carry_lineage_tags(registered, digits):
    settings, results = registered
    version = mlflow.MlflowClient(settings.tracking_uri).get_model_version("digits", "1")

    assert version.tags["family"] == "cnn"
    assert version.tags["data_hash"] == digits.data_hash
    assert version.tags["git_sha"] == "abc123"
    assert version.tags["prefect_flow_run_id"] == "none"
    assert version.tags["validation"].startswith("passed: ")
    assert version.run_id == results[0].candidate_run_ids["cnn"]


def test_runs_nest_candidates_under_a_pipeline_run(registered):
    settings, (first, *_) = registered
    client = mlflow.MlflowClient(settings.tracking_uri)
    child = client.get_run(first.candidate_run_ids["cnn"])
    parent = client.get_run(first.parent_run_id)

    assert child.data.tags["mlflow.parentRunId"] == first.parent_run_id
    assert parent.data.tags["mlpipe.role"] == "pipeline"
    assert child.data.metrics["test/accuracy"] == 0.95
    assert [m.step for m in client.get_metric_history(child.info.run_id, "val/loss")] == [0, 1, 2]
    artifacts = {a.path for a in client.list_artifacts(child.info.run_id, "evaluation")}
    assert "evaluation/confusion_matrix.png" in artifacts
    assert client.list_artifacts(parent.info.run_id, "validation")[0].path == "validation/validation.json"


def test_leaderboard_follows_the_compare_contract(registered, digits):
    settings, _ = registered
    rows = leaderboard("digits", settings)

    assert [r["test_accuracy"] for r in rows] == [0.97, 0.95, 0.90]
    assert rows[0]["registered_version"] == 3 and rows[0]["aliases"] == ["challenger", "champion"]
    assert rows[1]["aliases"] == []
    assert set(rows[0]) == {
        "run_id",
        "dataset",
        "family",
        "test_accuracy",
        "test_f1_macro",
        "registered_version",
        "aliases",
        "data_hash",
        "git_sha",
    }
    assert rows[0]["data_hash"] == digits.data_hash


def test_leaderboard_of_an_unknown_dataset_says_what_to_do(workspace):
    with pytest.raises(MlpipeError, match="run `mlpipe run --dataset nope` first"):
        leaderboard("nope", Settings(root=workspace))


def test_the_champion_predicts_raw_rows_in_a_fresh_process(registered, digits, digits_split, trained_cnn):
    settings, _ = registered
    rows = digits.frame.iloc[digits_split.test[:20]]
    script = f"""
import json, sys, mlflow, pandas as pd
mlflow.set_tracking_uri({settings.tracking_uri!r})
model = mlflow.pyfunc.load_model("models:/digits@champion")
frame = pd.DataFrame(json.loads(sys.stdin.read()))
print(json.dumps(model.predict(frame)["label"].tolist()))
"""
    features = rows[digits.feature_columns].to_dict(orient="list")
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(features),
        capture_output=True,
        text=True,
        cwd="/",  # not the checkout: the model must bring its own code
    )
    assert done.returncode == 0, done.stderr
    served = json.loads(done.stdout.strip().splitlines()[-1])

    from models.preprocessing import model_inputs
    from tasks.evaluation import predict_classes

    x = model_inputs(rows, trained_cnn.preprocessing)
    assert served == predict_classes(trained_cnn.network, x).tolist()
