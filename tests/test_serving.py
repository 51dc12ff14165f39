"""The champion served as users serve it: in a fresh process from its registered files, from a
file of raw rows (`mlpipe predict` and the predict deployment), and over MLflow's REST server."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import run_mlpipe
from payloads import Payload

from tasks.infra.errors import MlpipeError


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


def test_predict_labels_a_file_of_raw_rows(registered, digits, digits_split, tmp_path):
    settings, _ = registered
    rows = digits.frame.iloc[digits_split.test[:50]]
    rows[digits.feature_columns].to_csv(tmp_path / "new.csv", index=False)

    done = run_mlpipe(
        settings, "predict", "--input", str(tmp_path / "new.csv"), "--output", str(tmp_path / "out.parquet")
    )
    assert done.returncode == 0, done.stderr
    assert "50 rows labelled by digits v2" in done.stdout
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert list(out.columns[-2:]) == ["predicted_label", "predicted_probability"]
    assert (out["predicted_label"].to_numpy() == rows["label"].to_numpy()).mean() > 0.8

    rows[digits.feature_columns[:-1]].to_csv(tmp_path / "short.csv", index=False)
    bad = run_mlpipe(settings, "predict", "--input", str(tmp_path / "short.csv"), "--output", str(tmp_path / "o.csv"))
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1
    assert "short.csv does not fit digits v2" in bad.stderr and "pixel_63" in bad.stderr


def test_the_predict_deployment_writes_under_outputs_only(registered, digits, digits_split, monkeypatch):
    from tasks.registry.tasks import predict_file_task

    settings, _ = registered
    root = settings.root
    monkeypatch.setenv("MLPIPE_ROOT", str(root))
    (root / "outputs").mkdir(exist_ok=True)
    digits.frame.iloc[digits_split.test[:5]][digits.feature_columns].to_csv(root / "outputs" / "new.csv", index=False)
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "keep.csv").write_text("precious\n")
    (root / "outputs" / "to-data").symlink_to(root / "data")

    summary = predict_file_task.fn("digits", "outputs/new.csv", "outputs/labelled/new.csv")
    assert summary["rows"] == 5 and len(pd.read_csv(root / "outputs" / "labelled" / "new.csv")) == 5
    assert [p.name for p in (root / "outputs" / "labelled").iterdir()] == ["new.csv"]  # no partial file left

    before = sorted(p for p in root.parent.rglob("*") if p.is_file())
    for outside in ("../escaped.csv", "/tmp/mlpipe-escaped.csv", "data/keep.csv", "outputs/to-data/keep.csv"):
        with pytest.raises(MlpipeError, match=r"predictions are written under .*outputs only"):
            predict_file_task.fn("digits", "outputs/new.csv", outside)
    assert sorted(p for p in root.parent.rglob("*") if p.is_file()) == before
    assert (root / "data" / "keep.csv").read_text() == "precious\n"


def test_the_predict_deployment_reads_regular_files_under_the_project_only(registered, monkeypatch, tmp_path):
    """Its input is named by whoever reaches the API: no file outside the project, none in a hidden
    folder (.prefect/ holds the cache secret) or mlflow/, no device; nothing is read or written."""
    from tasks.registry.tasks import predict_file_task

    settings, _ = registered
    root = settings.root
    monkeypatch.setenv("MLPIPE_ROOT", str(root))
    (root / ".prefect").mkdir(exist_ok=True)
    (root / ".prefect" / "secret.csv").write_text("secret\nx\n")
    (tmp_path / "elsewhere.csv").write_text("x\n1\n")
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "outside.csv").symlink_to(tmp_path / "elsewhere.csv")

    for path in ("/etc/hostname", "../elsewhere.csv", ".prefect/secret.csv", "data/outside.csv", "mlflow/mlflow.db"):
        with pytest.raises(MlpipeError, match=r"a deployment reads input under .* only"):
            predict_file_task.fn("digits", path, "outputs/stolen.csv")
    with pytest.raises(MlpipeError, match="not a regular file"):
        predict_file_task.fn("digits", "data", "outputs/stolen.csv")
    assert not (root / "outputs" / "stolen.csv").exists()


def test_mlflow_serves_the_champion_over_rest(registered, digits, digits_split, trained_cnn, weak_cnn):
    import time
    import urllib.request

    import numpy as np

    from tasks.infra.local_servers import free_port

    settings, _ = registered
    rows = digits.frame.iloc[digits_split.test[:40]]
    # What the champion (v2, trained_cnn) says in this process; v1 and v3 (weak_cnn) differ on some rows.
    probabilities = trained_cnn.predict_proba(rows)
    expected = np.asarray(digits.classes)[probabilities.argmax(axis=1)].tolist()
    assert expected != np.asarray(digits.classes)[weak_cnn.predict_proba(rows).argmax(axis=1)].tolist()
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
    assert len(predictions) == len(rows) and {"label", "probability"} <= set(predictions[0])
    assert [p["label"] for p in predictions] == expected
    np.testing.assert_allclose([p["probability"] for p in predictions], probabilities.max(axis=1), rtol=1e-5)


def test_a_tampered_classical_member_is_refused_in_one_line_and_never_runs(digits, digits_split, tmp_path, monkeypatch):
    """A classical member is a skops file: one replaced in the artifact store by a pickle that
    would run code is refused by `mlpipe predict` in one line; the payload never runs."""
    import pickle

    from conftest import LINEAGE, make_workspace, validate

    from tasks.evaluation.scoring import evaluate
    from tasks.evaluation.tasks import choose_candidate
    from tasks.infra.settings import CODE_ROOT, Settings
    from tasks.registry.tasks import register
    from tasks.training.baseline import fit_baseline
    from tasks.types import BaselineConfig

    settings = Settings(root=make_workspace(tmp_path / "project"))
    monkeypatch.setenv("MLPIPE_ROOT", str(settings.root))
    report = validate(digits.frame, "digits", CODE_ROOT / "expectations" / "digits.json", tmp_path / "validation.json")
    model = fit_baseline(digits, digits_split, BaselineConfig(seed=0))
    evaluation = evaluate(model, digits, digits_split, settings.root / "outputs" / model.family)
    choice = choose_candidate.fn([model], digits, digits_split)
    register(digits, digits_split, report, [(model, evaluation)], choice, LINEAGE, settings)
    rows = settings.root / "outputs" / "rows.csv"
    digits.frame.iloc[digits_split.test[:5]][digits.feature_columns].to_csv(rows, index=False)
    predict = ["predict", "--dataset", "digits", "--input", str(rows), "--output", "outputs/labelled.csv"]
    assert run_mlpipe(settings, *predict).returncode == 0

    marker = tmp_path / "payload-ran"
    (member,) = settings.root.glob("mlflow/**/member_0.skops")
    member.write_bytes(pickle.dumps(Payload(marker)))
    done = run_mlpipe(settings, *predict)

    assert done.returncode != 0 and not marker.exists()
    assert done.stderr.strip().splitlines()[-1].endswith("member_0.skops is not a file skops wrote (BadZipFile)")


class _Estimator:
    """A type mlpipe never writes."""


def test_a_skops_file_holding_a_type_mlpipe_never_writes_is_refused(tmp_path):
    import skops.io

    from tasks.registry.pyfunc_model import UntrustedMember, load_estimator

    path = tmp_path / "member_0.skops"
    skops.io.dump({"estimator": _Estimator()}, path)

    with pytest.raises(UntrustedMember, match="holds types mlpipe never writes: test_serving._Estimator"):
        load_estimator(str(path))


def test_the_serving_worker_gets_the_store_s_settings_and_none_of_the_secrets(monkeypatch, tmp_path):
    """The worker runs the version's own code: it gets what reaches the store, not Prefect's or mlpipe's keys."""
    from tasks.registry import serving

    script = tmp_path / "environment.py"  # stands in for the worker's script: it says what it was given
    script.write_text("import json, os, sys\nsys.stdin.readline()\nprint(json.dumps(sorted(os.environ)))\n")
    monkeypatch.setattr(serving, "WORKER", script)
    for key in ("PREFECT_API_AUTH_STRING", "MLPIPE_CACHE_SECRET", "PREFECT_API_DATABASE_CONNECTION_URL"):
        monkeypatch.setenv(key, "secret")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key")
    out, _ = serving._start_worker().communicate("{}\n", timeout=60)
    given = json.loads(out)
    assert {"MLFLOW_TRACKING_USERNAME", "AWS_ACCESS_KEY_ID", "PATH"} <= set(given)
    assert not [key for key in given if key.startswith(("PREFECT_", "MLPIPE_", "PYTHON"))]


def test_predict_reads_and_writes_in_chunks_with_the_labels_of_one_pass(
    registered, digits, digits_split, monkeypatch, tmp_path
):
    """Chunks of a few rows give the labels the whole file gives; JSON lines whose keys come in
    another order each row land under the right columns; a file of a header only has no rows."""
    from tasks.registry import batch_scoring as inference

    settings, _ = registered
    monkeypatch.setenv("MLPIPE_ROOT", str(settings.root))
    rows = digits.frame.iloc[digits_split.test[:50]][digits.feature_columns].reset_index(drop=True)
    rows.to_csv(tmp_path / "new.csv", index=False)
    whole = inference.predict_file("digits", tmp_path / "new.csv", tmp_path / "whole.csv", settings)

    monkeypatch.setattr(inference, "CHUNK_ROWS", 7)
    with (tmp_path / "new.jsonl").open("w") as jsonl:  # every other row's keys reversed
        for i, row in rows.iterrows():
            record = dict(reversed(list(row.to_dict().items()))) if i % 2 else row.to_dict()
            jsonl.write(json.dumps({k: int(v) for k, v in record.items()}) + "\n")
    chunked = inference.predict_file("digits", tmp_path / "new.jsonl", tmp_path / "chunked.csv", settings)
    assert chunked["labels"] == whole["labels"] and chunked["rows"] == 50
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "chunked.csv"), pd.read_csv(tmp_path / "whole.csv"))

    (tmp_path / "header.csv").write_text(",".join(digits.feature_columns) + "\n")
    with pytest.raises(MlpipeError, match=r"header.csv has no rows$"):
        inference.predict_file("digits", tmp_path / "header.csv", tmp_path / "none.csv", settings)
    assert not (tmp_path / "none.csv").exists()
