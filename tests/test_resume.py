"""A training killed mid-way resumes from its last checkpoint on the next attempt."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow

from tasks.settings import Settings

MLPIPE = str(Path(sys.executable).with_name("mlpipe"))
ARGS = ["run", "--dataset", "digits", "--models", "rnn", "--max-epochs", "8", "--seed", "5"]


def _epochs_done(root: Path) -> int:
    histories = list((root / "outputs" / "digits" / "training").glob("rnn-*/history.json"))
    try:
        return len(json.loads(histories[0].read_text())) if histories else 0
    except ValueError:
        return 0  # caught mid-write


def test_a_killed_training_resumes_from_its_last_epoch(prefect_api, workspace):
    env = {**os.environ, "MLPIPE_ROOT": str(workspace)}
    first = subprocess.Popen(
        [MLPIPE, *ARGS], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 300
    while _epochs_done(workspace) < 2:
        assert first.poll() is None, f"the run ended before it could be killed: {first.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline, "no two epochs within 300 s"
        time.sleep(0.1)
    os.killpg(first.pid, signal.SIGKILL)  # as a lost machine or an OOM kill would
    first.wait()
    killed_at = _epochs_done(workspace)
    assert killed_at < 8

    second = subprocess.run([MLPIPE, *ARGS], env=env, capture_output=True, text=True, timeout=600)

    assert second.returncode == 0, second.stderr[-2000:]
    client = mlflow.MlflowClient(Settings(root=workspace).tracking_uri)
    (version,) = client.search_model_versions("name='digits'")
    experiment = client.get_experiment_by_name("digits").experiment_id
    (run,) = client.search_runs([experiment], "tags.family = 'rnn'")  # registered or not
    resumed_from = int(run.data.tags["resumed_from_epoch"])
    # Not from zero: the epochs before the kill were kept (the newest may not have been saved yet).
    assert 1 <= resumed_from <= killed_at
    assert f"rnn resumed from epoch {resumed_from}" in second.stderr
    # The learning curves still start at epoch 0: the history came back with the checkpoint.
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "val/loss")]
    assert steps == list(range(len(steps))) and len(steps) > resumed_from
