"""A training killed mid-way resumes from its last checkpoint on the next attempt."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
from payloads import Payload

from tasks.infra.settings import Settings

MLPIPE = str(Path(sys.executable).with_name("mlpipe"))
ARGS = ["run", "--dataset", "digits", "--models", "rnn", "--max-epochs", "8", "--seed", "5"]


def epochs_done(root: Path) -> int:
    """Epochs the rnn of a run in `root` has finished, from its history.json."""
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
    while epochs_done(workspace) < 2:
        assert first.poll() is None, f"the run ended before it could be killed: {first.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline, "no two epochs within 300 s"
        time.sleep(0.1)
    os.killpg(first.pid, signal.SIGKILL)  # as a lost machine or an OOM kill would
    first.wait()
    killed_at = epochs_done(workspace)
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
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "epoch/val_loss")]
    assert steps == list(range(len(steps))) and len(steps) > resumed_from


def _descendants(pid: int) -> set[int]:
    """Every live process below `pid`, from /proc's parent links."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


@pytest.mark.parametrize(
    ("signum", "extra"),
    [(signal.SIGTERM, []), (signal.SIGINT, []), (signal.SIGTERM, ["--devices", "2", "--strategy", "ddp"])],
    ids=["sigterm", "ctrl-c", "sigterm-ddp-worker"],
)
def test_a_stopped_run_leaves_no_process_behind(signum, extra, workspace):
    """The temporary Prefect API, a multi-device worker and its ranks all stop with the run."""
    env = {**os.environ, "MLPIPE_ROOT": str(workspace)}
    env.pop("PREFECT_API_URL", None)  # the run starts its own temporary API
    args = [MLPIPE, "run", "--dataset", "digits", "--models", "rnn", "--max-epochs", "200", *extra]
    # As from a terminal: SIGINT delivered, even where this test runs as a background job (which
    # starts with SIGINT ignored, and mlpipe keeps an ignored signal ignored).
    run = subprocess.Popen(
        args,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 300
    while epochs_done(workspace) < 1:
        assert run.poll() is None, f"the run ended before it could be stopped: {run.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline, "no epoch within 300 s"
        time.sleep(0.2)
    started = _descendants(run.pid)
    assert started, "the run has its temporary API (and, with --devices 2, a worker) below it"

    run.send_signal(signum)  # to the run alone: nothing else tells its children
    _, err = run.communicate(timeout=120)

    expected = (130, "error: interrupted") if signum == signal.SIGINT else (143, "error: terminated")
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert (run.returncode, errors) == (expected[0], [expected[1]]), err[-2000:]
    deadline = time.monotonic() + 30
    while _alive(started) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = {pid: Path(f"/proc/{pid}/cmdline").read_bytes()[:200] for pid in _alive(started)}
    assert not left, left


def test_a_tampered_last_checkpoint_never_runs_and_the_fit_starts_over(digits, digits_split, tmp_path, caplog):
    """A last.ckpt another machine could write is read as weights only: a pickle that would run
    code is set aside in one line and the candidate trains from its first epoch."""
    from dataclasses import replace

    import torch

    from tasks.infra.params import load_params
    from tasks.training.config import train_config
    from tasks.training.network import train

    marker, out_dir = tmp_path / "payload-ran", tmp_path / "fit"
    out_dir.mkdir()
    torch.save({"epoch": 5, "state_dict": Payload(marker)}, out_dir / "last.ckpt")
    config = replace(train_config(load_params(Settings(root=tmp_path)), "image", "cnn", 0), max_epochs=2)

    model = train(digits, digits_split, config, out_dir)

    assert not marker.exists()
    assert model.resumed_from_epoch == 0 and model.epochs_run == 2
    assert (out_dir / "last.ckpt.refused").exists()
    assert any("no checkpoint to resume from" in r.getMessage() for r in caplog.records)


def test_a_finished_fit_whose_best_checkpoint_was_replaced_trains_again(digits, digits_split, tmp_path, caplog):
    """result.json names the sha256 of its best.ckpt: a replaced one (a tampered shared copy) is
    never loaded; the folder's checkpoints are set aside and the candidate trains again."""
    from dataclasses import replace

    import torch

    from tasks.infra.files import file_sha256
    from tasks.infra.params import load_params
    from tasks.training.config import train_config
    from tasks.training.network import train

    marker, out_dir = tmp_path / "payload-ran", tmp_path / "fit"
    config = replace(train_config(load_params(Settings(root=tmp_path)), "image", "cnn", 0), max_epochs=1)
    train(digits, digits_split, config, out_dir)
    torch.save({"state_dict": Payload(marker)}, out_dir / "best.ckpt")

    model = train(digits, digits_split, config, out_dir)

    assert not marker.exists() and model.epochs_run == 1
    assert json.loads((out_dir / "result.json").read_text())["best_sha256"] == file_sha256(out_dir / "best.ckpt")
    assert any("is not the checkpoint its result.json names" in r.getMessage() for r in caplog.records)
