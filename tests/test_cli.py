"""The `mlpipe` console script as a user runs it: real processes, real exit codes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

MLPIPE = str(Path(sys.executable).with_name("mlpipe"))


def mlpipe(*args: str, root: Path | None = None, ephemeral_prefect: bool = False) -> subprocess.CompletedProcess:
    """Run the console script; ephemeral_prefect: as on a laptop, with no Prefect server configured."""
    env = {**os.environ, "MLPIPE_ROOT": str(root)} if root else dict(os.environ)
    if ephemeral_prefect:
        env.pop("PREFECT_API_URL", None)
    return subprocess.run([MLPIPE, *args], capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.parametrize(
    "command", [[], ["run"], ["validate"], ["compare"], ["reproduce"], ["serve"], ["up"], ["data", "add"], ["pretrain"]]
)
def test_every_command_has_help(command):
    done = mlpipe(*command, "--help")
    assert done.returncode == 0
    assert "Usage: mlpipe" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["run", "--max-epochs", "0"],
            "error: parameter 'max_epochs': Input should be greater than or equal to 1 (got 0)",
        ),
        (
            ["run", "--models", "cnn,svm"],
            "error: parameter 'models.1': Input should be 'cnn', 'rnn', 'transformer', 'pretrained', "
            "'baseline' or 'rocket' (got 'svm')",
        ),
        (["run", "--max-epochs", "many"], "error: Invalid value for '--max-epochs': Input should be a valid integer"),
        (
            ["run", "--dataset", "nope", "--max-epochs", "1"],
            "error: parameter 'dataset': unknown data set 'nope': built-in data sets are digits",
        ),
        (["compare", "--dataset", "nope"], "error: no runs for data set 'nope'"),
        (["compare", "--format", "xml"], "'xml' is not one of 'table', 'json'"),
        (["train"], "error: No such command 'train'."),
        (["run", "--xyzzy"], "error: No such option: --xyzzy (see `mlpipe run --help`)"),
    ],
)
def test_bad_arguments_get_one_line_and_a_nonzero_exit(args, message, workspace):
    done = mlpipe(*args, root=workspace)

    assert done.returncode != 0
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr + done.stdout


@pytest.mark.parametrize("name", ["../../escaped", "/tmp/mlpipe-absolute-name", "sub/dir", ".hidden"])
def test_a_data_set_name_that_is_a_path_is_refused_before_anything_is_written(name, workspace):
    from conftest import SHARED_DATASETS

    before = sorted(workspace.parent.rglob("*"))
    add = ["data", "add", str(SHARED_DATASETS / "ecg200_train.txt"), "--name", name, "--modality", "sequence"]
    done = mlpipe(*add, root=workspace)

    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        f"error: data set name {name!r} is not allowed: use letters, digits, '_', '-' and '.', "
        "starting with a letter or digit (no path)"
    ]
    assert sorted(workspace.parent.rglob("*")) == before  # nothing written, in the project or beside it
    assert not Path("/tmp/mlpipe-absolute-name.yaml").exists()


def test_broken_data_fails_the_run_with_one_error_line(workspace, digits):
    table = workspace / "data" / "digits" / "digits.parquet"
    table.parent.mkdir(parents=True)
    broken = digits.frame.copy()
    broken.loc[3, "label"] = 12
    broken.to_parquet(table, index=False)

    done = mlpipe("run", "--max-epochs", "1", root=workspace)

    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: validation failed for digits: 2 of 137 expectations and checks failed: "
        "expect_column_values_to_be_in_set(label) 1 unexpected, e.g. [12]; "
        "class_counts: class 12 has 1 training samples, fewer than 5 "
        f"(report: {workspace}/outputs/digits/" + errors[0].split("/outputs/digits/")[1]
    ]
    assert "Traceback" not in done.stderr + done.stdout
    assert not (workspace / "mlflow" / "mlflow.db").exists()


def test_run_then_compare_from_the_command_line(workspace):
    done = mlpipe(
        "run", "--dataset", "digits", "--models", "cnn", "--max-epochs", "2", root=workspace, ephemeral_prefect=True
    )
    assert done.returncode == 0, done.stderr
    assert "Leaderboard for digits" in done.stdout
    assert "mlflow ui --backend-store-uri sqlite:///" in done.stdout
    # No row was cross-validated or compressed: no spread, size or latency column of dashes.
    header = next(line for line in done.stdout.splitlines() if line.startswith("family "))
    assert header.split()[:4] == ["family", "val_accuracy", "test_accuracy", "test_f1_macro"]

    compared = mlpipe("compare", "--dataset", "digits", "--format", "json", root=workspace)
    assert compared.returncode == 0, compared.stderr
    rows = {row["family"]: row for row in json.loads(compared.stdout)}
    assert set(rows) == {"cnn", "baseline"}
    (chosen,) = [row for row in rows.values() if row["registered_version"] == 1]
    assert chosen["selected_by"] == "val/accuracy" and "champion" in chosen["aliases"]
    assert chosen["val_accuracy"] == max(row["val_accuracy"] for row in rows.values())


def test_validate_builds_a_suite_from_the_data_then_holds_new_data_to_it(workspace):
    import csv

    import pandas as pd
    from conftest import SHARED_DATASETS

    sms = pd.read_csv(SHARED_DATASETS / "sms_spam.tsv", sep="\t", quoting=csv.QUOTE_NONE).head(400)
    sms.to_csv(workspace / "sms.csv", index=False)
    spec = workspace / "sms.yaml"
    spec.write_text("name: sms\nmodality: text\nformat: csv\ntrain: sms.csv\nlabel_column: Label\ntext_column: SMS\n")

    built = mlpipe("validate", "--dataset", str(spec), "--init-suite", root=workspace)
    assert built.returncode == 0, built.stderr
    suite = json.loads((workspace / "expectations" / "sms.json").read_text())
    kinds = {e["type"] for e in suite["expectations"]}
    assert {"expect_column_values_to_be_in_set", "expect_column_kl_divergence_to_be_less_than"} <= kinds
    assert "expect_column_value_lengths_to_be_between" in kinds
    again = mlpipe("validate", "--dataset", str(spec), "--init-suite", root=workspace)
    assert again.returncode == 1 and "sms.json exists: edit it, or pass --force" in again.stderr

    passed = mlpipe("validate", "--dataset", str(spec), root=workspace)
    assert passed.returncode == 0, passed.stderr
    assert "sms: all 12 expectations and checks passed" in passed.stdout
    assert "Data Docs: " in passed.stdout

    sms.loc[7, "Label"] = "maybe"
    sms.loc[8, "SMS"] = "x" * 1000  # longer than any text the suite was built from
    sms.to_csv(workspace / "sms.csv", index=False)
    failed = mlpipe("validate", "--dataset", str(spec), root=workspace)
    assert failed.returncode == 1
    (error,) = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
    assert "expect_column_values_to_be_in_set(Label) 1 unexpected, e.g. ['maybe']" in error
    assert "expect_column_value_lengths_to_be_between(SMS) 1 unexpected" in error
    assert "Traceback" not in failed.stderr


def test_an_unreachable_mlflow_server_stops_the_run_before_training(prefect_api, workspace):
    from conftest import free_port

    port = free_port()  # nothing listens there
    env = {**os.environ, "MLPIPE_ROOT": str(workspace), "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"}
    done = subprocess.run(
        [MLPIPE, "run", "--models", "cnn", "--max-epochs", "1"], capture_output=True, text=True, env=env, timeout=300
    )

    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: the MLflow tracking server (MLFLOW_TRACKING_URI) does not answer at "
        f"http://127.0.0.1:{port}/health ([Errno 111] Connection refused)"
    ]
    assert "Traceback" not in done.stderr + done.stdout
    assert not (workspace / "outputs" / "digits").exists()  # nothing validated or trained


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("postgresql+psycopg://mlflow:s3cr/et@db:5432/mlflow", "postgresql+psycopg://mlflow:***@db:5432/mlflow"),
        ("failed: http://alice:pw@10.0.0.1:5000/api/2.0/x", "failed: http://alice:***@10.0.0.1:5000/api/2.0/x"),
        (
            "postgresql://db/mlflow?user=u&password=hunter2&sslmode=require",
            "postgresql://db/mlflow?user=u&password=***&sslmode=require",
        ),
        ("sqlite:////tmp/mlflow.db and http://host:5000", "sqlite:////tmp/mlflow.db and http://host:5000"),
    ],
)
def test_passwords_in_uris_are_masked(text, shown):
    from tasks.infra.errors import redact

    assert redact(text) == shown


def test_a_tracking_server_uri_reaches_mlflow_without_its_user_info(monkeypatch):
    from tasks.infra.settings import Settings

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://alice:p%40ss@[::1]:5000")
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    assert Settings(root=Path("/tmp")).tracking_uri == "http://[::1]:5000"
    assert (os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]) == ("alice", "p@ss")


def test_a_flow_run_link_is_stored_only_for_a_prefect_server_people_can_browse(monkeypatch):
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL, temporary_settings

    from tasks.infra.local_servers import TEMPORARY_API
    from tasks.infra.runs import flow_run_url

    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:4200/api", PREFECT_UI_URL: "http://127.0.0.1:4200"}):
        assert flow_run_url("abc") == "http://127.0.0.1:4200/runs/flow-run/abc"
        monkeypatch.setenv(TEMPORARY_API, "http://127.0.0.1:4200/api")  # a command-line run's own API
        assert flow_run_url("abc") == "none (temporary Prefect server)"


def test_the_project_password_goes_only_to_its_own_running_server(workspace, monkeypatch):
    """Another user of the machine may listen on a port the project's server left: no password for it."""
    import json
    import subprocess
    import sys
    import time

    import psutil

    from tasks.infra.api_auth import api_auth_string
    from tasks.infra.local_servers import port_is_free
    from tasks.infra.project_server import MODULE, RECORD, adopt_project_auth
    from tasks.infra.settings import Settings

    settings = Settings(root=workspace)
    settings.prefect_home.mkdir()
    monkeypatch.setenv("PREFECT_API_AUTH_STRING", "")  # put back unset at the end: what it sets stays in this test

    def record(pid: int, later: float = 0) -> None:
        started = psutil.Process(pid).create_time() + later
        (settings.prefect_home / RECORD).write_text(json.dumps({"port": 4321, "pid": pid, "started": started}))

    def sent_to(url: str) -> bool:
        monkeypatch.setenv("PREFECT_API_URL", url)
        monkeypatch.delenv("PREFECT_API_AUTH_STRING", raising=False)
        adopt_project_auth(settings)
        return os.environ.get("PREFECT_API_AUTH_STRING") == api_auth_string(settings)

    # A process that stands in for the server: its command line names the server's module, and it
    # listens on the recorded port.
    code = "import socket, sys, time; s = socket.socket(); s.bind(('127.0.0.1', 4321)); s.listen(); time.sleep(60)"
    server = subprocess.Popen([sys.executable, "-c", code, MODULE])
    try:
        deadline = time.monotonic() + 30
        while port_is_free(4321):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        record(server.pid)
        assert sent_to("http://127.0.0.1:4321/api")
        assert not sent_to("http://127.0.0.1:4322/api")
        assert not sent_to("http://prefect.example:4321/api")
        record(server.pid, later=5)  # a process that got the recorded number since the server started
        assert not sent_to("http://127.0.0.1:4321/api")
    finally:
        server.kill()
        server.wait()
    assert not sent_to("http://127.0.0.1:4321/api")  # its process is gone
    record(os.getpid())  # a live process with the record's number that is not the server
    assert not sent_to("http://127.0.0.1:4321/api")
