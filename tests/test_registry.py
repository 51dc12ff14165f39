import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import make_workspace

from tasks.evaluation.scoring import evaluate
from tasks.evaluation.tasks import choose_candidate
from tasks.infra.errors import MlpipeError
from tasks.infra.params import PromotionParams
from tasks.infra.settings import CODE_ROOT, Settings
from tasks.registry.aliases import HISTORY_TAG, champion_history, move_champion, rollback
from tasks.registry.promotion import decide
from tasks.registry.reports import leaderboard
from tasks.registry.tasks import register
from tasks.training.network import train
from tasks.types import TrainConfig
from tasks.validation.checking import validate

LINEAGE = {"git_sha": "abc123", "git_dirty": "false", "prefect_flow_run_id": "none"}


@pytest.fixture(scope="module")
def weak_cnn(digits, digits_split, shared_workspace):
    """A CNN that has barely trained: clearly worse than trained_cnn on the same test rows."""
    config = TrainConfig(
        family="cnn",
        max_epochs=1,
        batch_size=256,
        patience=1,
        seed=1,
        optimiser={"learning_rate": 3e-4},
        network={"channels": 2},
    )
    return train(digits, digits_split, config, shared_workspace / "outputs" / "weak")


@pytest.fixture(scope="module")
def registered(trained_cnn, weak_cnn, digits, digits_split, tmp_path_factory):
    """Register weak, strong, weak again (as if retrained): v1, v2, v3 in one store."""
    root = make_workspace(tmp_path_factory.mktemp("registry") / "project")
    settings = Settings(root=root)
    report_path = root / "validation.json"
    report = validate(digits.frame, "digits", CODE_ROOT / "expectations" / "digits.json", report_path)
    results = []
    # A retrain that ended up as weak: another training key, or the registry would reuse v1.
    weak_again = dataclasses.replace(weak_cnn, training_key="retrained")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLPIPE_ROOT", str(root))
        for model in (weak_cnn, trained_cnn, weak_again):
            evaluation = evaluate(model, digits, digits_split, root / "outputs" / model.family)
            choice = choose_candidate.fn([model], digits, digits_split)
            results.append(register(digits, digits_split, report, [(model, evaluation)], choice, LINEAGE, settings))
    return settings, results


@pytest.fixture
def own_registry(registered, tmp_path):
    """A copy of the registered project, for a test that moves aliases or rewrites tags: the
    others then see the registry as `registered` made it, whatever order they run in. (The copy's
    store still points at the original's artifacts, which nothing here writes.)"""
    import shutil

    settings, results = registered
    shutil.copytree(settings.root, tmp_path / "project", symlinks=True)
    return Settings(root=tmp_path / "project"), results


def test_champion_moves_only_to_a_clearly_better_version(registered):
    settings, (weak, strong, weak_again) = registered
    client = mlflow.MlflowClient(settings.tracking_uri)

    assert (weak.version, strong.version, weak_again.version) == ("1", "2", "3")
    assert weak.promoted and strong.promoted and not weak_again.promoted
    assert weak.reason.startswith("champion: first version")
    assert strong.reason.startswith("champion: test/accuracy ") and "vs champion v1's" in strong.reason
    assert weak_again.reason.startswith("not promoted: test/accuracy ")
    assert "the gain is not above min_delta 0.0" in weak_again.reason
    tags = client.get_model_version("digits", "3").tags
    assert tags["promotion"] == weak_again.reason
    assert tags["promotion.champion_version"] == "2" and float(tags["promotion.delta"]) < 0
    assert tags["promotion.decision"] == "not promoted"
    assert float(tags["promotion.challenger_accuracy"]) == float(tags["test/accuracy"])
    assert float(tags["promotion.ci_low"]) <= float(tags["promotion.delta"]) <= float(tags["promotion.ci_high"])
    # The champion re-scored on these rows in a fresh process: its registered figure.
    champion_tags = client.get_model_version("digits", "2").tags
    assert float(tags["promotion.champion_accuracy"]) == pytest.approx(float(champion_tags["test/accuracy"]))
    assert client.get_model_version("digits", "2").tags["challenged_by.v3"] == weak_again.reason
    assert str(client.get_model_version_by_alias("digits", "champion").version) == "2"
    assert str(client.get_model_version_by_alias("digits", "challenger").version) == "3"


def test_an_equal_retrain_is_noise_not_a_promotion():
    correct = np.random.default_rng(0).random(400) < 0.9
    flipped = correct.copy()
    flipped[np.flatnonzero(~correct)[:3]] = True  # three more rows right: +0.75 points, inside the noise
    decision = decide(flipped, "4", correct)
    assert not decision.promote and "its lower bound is not above min_delta 0.0" in decision.reason
    assert not decide(correct, "4", correct, PromotionParams(min_delta=0.0)).promote
    assert decide(correct, None, None).promote


def test_rollback_restores_the_previous_champion(own_registry):
    settings, _ = own_registry
    client = mlflow.MlflowClient(settings.tracking_uri)
    assert champion_history(client, "digits") == ["1", "2"]

    assert rollback(client, "digits") == ("2", "1")
    assert str(client.get_model_version_by_alias("digits", "champion").version) == "1"
    with pytest.raises(MlpipeError, match="no earlier champion to roll back to"):
        rollback(client, "digits")
    move_champion(client, "digits", "2")
    move_champion(client, "digits", "2")  # `mlpipe promote` of the champion itself: no second entry
    assert champion_history(client, "digits") == ["1", "2"]


def test_alias_and_history_agree_after_a_move_that_stopped_halfway(own_registry):
    settings, _ = own_registry
    client = mlflow.MlflowClient(settings.tracking_uri)
    assert champion_history(client, "digits") == ["1", "2"]
    client.set_registered_model_alias("digits", "champion", "3")  # moved; the history not yet written
    assert champion_history(client, "digits") == ["1", "2", "3"]
    assert rollback(client, "digits") == ("3", "2")  # from the alias's real version
    assert champion_history(client, "digits") == ["1", "2"]
    # A rollback that wrote the history, then stopped before the alias: as if it never began.
    client.set_registered_model_tag("digits", HISTORY_TAG, json.dumps(["1"]))
    assert champion_history(client, "digits") == ["1", "2"]


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
    assert 0 < child.data.metrics["test/accuracy"] < 0.9  # the weak model
    assert [m.step for m in client.get_metric_history(child.info.run_id, "val/loss")] == [0]
    artifacts = {a.path for a in client.list_artifacts(child.info.run_id, "evaluation")}
    assert "evaluation/confusion_matrix.png" in artifacts
    assert client.list_artifacts(parent.info.run_id, "validation")[0].path == "validation/validation.json"


def test_leaderboard_follows_the_compare_contract(registered, digits):
    settings, _ = registered
    rows = leaderboard("digits", settings)

    accuracies = [r["val_accuracy"] for r in rows]  # best first by the figure that chooses
    assert accuracies == sorted(accuracies, reverse=True) and len(rows) == 3
    assert all(r["selected_by"] == "selection/val_accuracy" and r["selected"] for r in rows)
    assert rows[0]["flags"] == [] and all(isinstance(r["flags"], list) for r in rows)
    assert rows[0]["registered_version"] == 2 and rows[0]["aliases"] == ["champion"]
    assert {r["registered_version"]: r["aliases"] for r in rows[1:]} == {1: [], 3: ["challenger"]}
    assert set(rows[0]) == {
        "run_id",
        "dataset",
        "family",
        "val_accuracy",
        "selected_by",
        "selected",
        "flags",
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

    assert served == trained_cnn.predict_proba(rows).argmax(axis=1).tolist()


def _mlpipe(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLPIPE_ROOT": str(settings.root)}
    mlpipe = str(Path(sys.executable).with_name("mlpipe"))
    return subprocess.run([mlpipe, *args], capture_output=True, text=True, env=env, timeout=300)


def test_promote_and_rollback_from_the_command_line(own_registry):
    settings, _ = own_registry
    client = mlflow.MlflowClient(settings.tracking_uri)

    promoted = _mlpipe(settings, "promote", "--dataset", "digits", "--version", "3")
    assert promoted.returncode == 0, promoted.stderr
    assert str(client.get_model_version_by_alias("digits", "champion").version) == "3"
    assert client.get_model_version("digits", "3").tags["promotion"].startswith("champion: promoted by hand")

    rolled = _mlpipe(settings, "rollback", "--dataset", "digits")
    assert rolled.returncode == 0 and "moved back from v3 to v2" in rolled.stdout
    assert str(client.get_model_version_by_alias("digits", "champion").version) == "2"

    missing = _mlpipe(settings, "promote", "--dataset", "digits", "--version", "9")
    assert missing.returncode == 1 and missing.stderr.strip() == "error: digits has no version 9"


def test_predict_labels_a_file_of_raw_rows(registered, digits, digits_split, tmp_path):
    settings, _ = registered
    rows = digits.frame.iloc[digits_split.test[:50]]
    rows[digits.feature_columns].to_csv(tmp_path / "new.csv", index=False)

    done = _mlpipe(settings, "predict", "--input", str(tmp_path / "new.csv"), "--output", str(tmp_path / "out.parquet"))
    assert done.returncode == 0, done.stderr
    assert "50 rows labelled by digits v2" in done.stdout
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert list(out.columns[-2:]) == ["predicted_label", "predicted_probability"]
    assert (out["predicted_label"].to_numpy() == rows["label"].to_numpy()).mean() > 0.8

    rows[digits.feature_columns[:-1]].to_csv(tmp_path / "short.csv", index=False)
    bad = _mlpipe(settings, "predict", "--input", str(tmp_path / "short.csv"), "--output", str(tmp_path / "o.csv"))
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1
    assert "short.csv does not fit digits v2" in bad.stderr and "pixel_63" in bad.stderr


def test_the_predict_deployment_writes_under_outputs_only(registered, digits, digits_split, monkeypatch):
    from tasks.registry.tasks import predict_file

    settings, _ = registered
    root = settings.root
    monkeypatch.setenv("MLPIPE_ROOT", str(root))
    (root / "outputs").mkdir(exist_ok=True)
    digits.frame.iloc[digits_split.test[:5]][digits.feature_columns].to_csv(root / "outputs" / "new.csv", index=False)
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "keep.csv").write_text("precious\n")
    (root / "outputs" / "to-data").symlink_to(root / "data")

    summary = predict_file.fn("digits", "outputs/new.csv", "outputs/labelled/new.csv")
    assert summary["rows"] == 5 and len(pd.read_csv(root / "outputs" / "labelled" / "new.csv")) == 5
    assert [p.name for p in (root / "outputs" / "labelled").iterdir()] == ["new.csv"]  # no partial file left

    before = sorted(p for p in root.parent.rglob("*") if p.is_file())
    for outside in ("../escaped.csv", "/tmp/mlpipe-escaped.csv", "data/keep.csv", "outputs/to-data/keep.csv"):
        with pytest.raises(MlpipeError, match=r"predictions are written under .*outputs only"):
            predict_file.fn("digits", "outputs/new.csv", outside)
    assert sorted(p for p in root.parent.rglob("*") if p.is_file()) == before
    assert (root / "data" / "keep.csv").read_text() == "precious\n"


def test_compare_draws_a_plot(registered, tmp_path):
    settings, _ = registered
    done = _mlpipe(settings, "compare", "--dataset", "digits", "--plot", str(tmp_path / "runs.png"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "runs.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_mlflow_serves_the_champion_over_rest(registered, digits, digits_split):
    import time
    import urllib.request

    from tasks.infra.servers import free_port

    settings, _ = registered
    port = free_port()
    mlflow_cli = str(Path(sys.executable).with_name("mlflow"))
    # As from an activated venv: the server runs `uvicorn` from PATH.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": settings.tracking_uri, "PATH": path}
    server = subprocess.Popen(
        [mlflow_cli, "models", "serve", "-m", "models:/digits@champion", "--env-manager", "local",
         "-h", "127.0.0.1", "-p", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        rows = digits.frame.iloc[digits_split.test[:5]]
        body = json.dumps({"dataframe_split": rows[digits.feature_columns].to_dict(orient="split")}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", data=body, headers={"Content-Type": "application/json"}
        )
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    predictions = json.loads(response.read())["predictions"]
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()[-2000:]
                assert time.monotonic() < deadline, "mlflow models serve did not answer within 120 s"
                time.sleep(1)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert len(predictions) == 5 and {"label", "probability"} <= set(predictions[0])
