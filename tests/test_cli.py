"""The `mlpipe` console script as a user runs it: real processes, real exit codes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

MLPIPE = str(Path(sys.executable).with_name("mlpipe"))


def mlpipe(*args: str, root: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLPIPE_ROOT": str(root)} if root else dict(os.environ)
    return subprocess.run([MLPIPE, *args], capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.parametrize("command", [[], ["run"], ["compare"]])
def test_every_command_has_help(command):
    done = mlpipe(*command, "--help")
    assert done.returncode == 0
    assert "Usage: mlpipe" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["run", "--max-epochs", "0"],
            "error: bad value for max_epochs (0): Input should be greater than or equal to 1",
        ),
        (
            ["run", "--models", "cnn,svm"],
            "error: bad value for models.1 ('svm'): Input should be 'cnn', 'rnn' or 'transformer'",
        ),
        (["run", "--max-epochs", "many"], "error: Invalid value for '--max-epochs': Input should be a valid integer"),
        (
            ["run", "--dataset", "nope", "--max-epochs", "1"],
            "error: bad value for dataset ('nope'): unknown data set 'nope': built-in data sets are digits",
        ),
        (["compare", "--dataset", "nope"], "error: no runs for data set 'nope'"),
        (["compare", "--format", "xml"], "'xml' is not one of 'table', 'json'"),
        (["train"], "error: No such command 'train'."),
        (["run", "--nope"], "error: No such option: --nope (see `mlpipe run --help`)"),
    ],
)
def test_bad_arguments_get_one_line_and_a_nonzero_exit(args, message, workspace):
    done = mlpipe(*args, root=workspace)

    assert done.returncode != 0
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr + done.stdout


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
        "error: validation failed for digits: 1 of 132 expectations failed: "
        "expect_column_values_to_be_in_set(label) 1 unexpected, e.g. [12] "
        f"(report: {workspace}/outputs/digits/" + errors[0].split("/outputs/digits/")[1]
    ]
    assert "Traceback" not in done.stderr + done.stdout
    assert not (workspace / "mlflow" / "mlflow.db").exists()


def test_run_then_compare_from_the_command_line(workspace):
    done = mlpipe("run", "--dataset", "digits", "--models", "cnn", "--max-epochs", "2", root=workspace)
    assert done.returncode == 0, done.stderr
    assert "Leaderboard for digits" in done.stdout
    assert "mlflow ui --backend-store-uri sqlite:///" in done.stdout

    compared = mlpipe("compare", "--dataset", "digits", "--format", "json", root=workspace)
    assert compared.returncode == 0, compared.stderr
    (row,) = json.loads(compared.stdout)
    assert row["family"] == "cnn" and row["registered_version"] == 1
    assert "champion" in row["aliases"]
