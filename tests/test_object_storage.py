"""Object storage (MLPIPE_STORAGE_URL) on a real S3 API, moto's server: what one machine's run leaves
there, another machine's run of the same data and settings reads back. Each "machine" here is a
project of its own in its own folder, sharing nothing but the bucket."""

import os
import signal
import subprocess
import time
from pathlib import Path

import mlflow
import pytest
from conftest import make_workspace
from engines import bucket_objects
from test_resume import MLPIPE, epochs_done

from tasks.infra.errors import MlpipeError
from tasks.infra.settings import Settings

ARGS = ["run", "--dataset", "digits", "--models", "rnn", "--max-epochs", "5", "--seed", "5"]


def _machine(tmp_path: Path, name: str) -> tuple[Path, dict]:
    root = make_workspace(tmp_path / name)
    return root, {**os.environ, "MLPIPE_ROOT": str(root)}


# Three whole runs (~80 s): in `make test-slow`; test_production covers what a run writes there.
@pytest.mark.slow
def test_a_candidate_killed_on_one_machine_resumes_on_another_and_a_third_reads_the_cache(
    prefect_api, object_storage, tmp_path
):
    first_root, first_env = _machine(tmp_path, "first")
    first = subprocess.Popen(
        [MLPIPE, *ARGS], env=first_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    # Two epochs pushed: the checkpoints of the epoch before reach the bucket as the next one starts.
    while epochs_done(first_root) < 3:
        assert first.poll() is None, f"the run ended before it could be killed: {first.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline, "no three epochs within 300 s"
        time.sleep(0.1)
    os.killpg(first.pid, signal.SIGKILL)  # the machine is lost
    first.wait()
    assert any(name.endswith("/last.ckpt") for name in bucket_objects(object_storage))

    second_root, second_env = _machine(tmp_path, "second")
    second = subprocess.run([MLPIPE, *ARGS], env=second_env, capture_output=True, text=True, timeout=600)

    assert second.returncode == 0, second.stderr[-2000:]
    client = mlflow.MlflowClient(Settings(root=second_root).tracking_uri)
    experiment = client.get_experiment_by_name("digits").experiment_id
    (run,) = client.search_runs([experiment], "tags.family = 'rnn'")
    assert int(run.data.tags["resumed_from_epoch"]) >= 1  # from the first machine's checkpoint
    objects = bucket_objects(object_storage)
    assert any(name.startswith("cache/") for name in objects)  # Prefect's results
    assert any(name.endswith("/result.json") for name in objects)  # the finished fit

    # A third machine with nothing on its disk: validation and both candidates read back, none trained.
    third_root, third_env = _machine(tmp_path, "third")
    third = subprocess.run([MLPIPE, *ARGS], env=third_env, capture_output=True, text=True, timeout=600)

    assert third.returncode == 0, third.stderr[-2000:]
    assert not (third_root / "outputs" / "digits" / "training").exists()
    client = mlflow.MlflowClient(Settings(root=third_root).tracking_uri)
    experiment = client.get_experiment_by_name("digits").experiment_id
    (rerun,) = client.search_runs([experiment], "tags.family = 'rnn'")
    assert rerun.data.metrics["test/accuracy"] == run.data.metrics["test/accuracy"]


# Two whole runs at once (~90 s): in `make test-slow`.
@pytest.mark.slow
def test_two_machines_running_the_same_candidate_at_once_train_it_once(prefect_api, object_storage, tmp_path):
    """The second machine waits on the Prefect server's lock of that candidate, then reads the
    first's finished fit from the bucket instead of training it again."""
    machines = [_machine(tmp_path, name) for name in ("first", "second")]
    args = ["run", "--dataset", "digits", "--models", "rnn", "--max-epochs", "3", "--seed", "8"]
    runs = [
        subprocess.Popen([MLPIPE, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _, env in machines
    ]
    outputs = [run.communicate(timeout=600) for run in runs]

    assert [run.returncode for run in runs] == [0, 0], [err[-2000:] for _, err in outputs]
    waited = [i for i, (out, err) in enumerate(outputs) if "waiting for another machine training rnn" in out + err]
    assert len(waited) == 1, "exactly one machine waited for the other"
    figures = []
    for root, _ in machines:
        client = mlflow.MlflowClient(Settings(root=root).tracking_uri)
        (run,) = client.search_runs([client.get_experiment_by_name("digits").experiment_id], "tags.family = 'rnn'")
        figures.append((run.data.metrics["train/seconds"], run.data.metrics["test/accuracy"]))
    assert figures[0] == figures[1]  # the same fit: one trained, the other read its result


def test_an_unknown_storage_scheme_is_one_line(workspace, monkeypatch):
    from tasks.infra.objects import pull

    with pytest.raises(MlpipeError, match=r"object storage nosuch://bucket/x: .*nosuch"):
        pull("nosuch://bucket/x", workspace, ("last.ckpt",))


def test_a_storage_url_holding_a_password_is_refused_without_printing_it(workspace):
    """The URL is saved in Prefect's blocks and DVC's config: its credentials belong elsewhere."""
    env = {**os.environ, "MLPIPE_ROOT": str(workspace), "MLPIPE_STORAGE_URL": "s3://key:s3cret@bucket/mlpipe"}
    done = subprocess.run([MLPIPE, "run", "--dataset", "digits"], env=env, capture_output=True, text=True, timeout=300)

    assert done.returncode != 0 and "s3cret" not in done.stdout + done.stderr
    assert "MLPIPE_STORAGE_URL=s3://key:***@bucket/mlpipe holds a password" in done.stderr.strip().splitlines()[-1]


def test_data_added_on_one_machine_is_pulled_by_a_clone_on_another(prefect_api, object_storage, tmp_path):
    import shutil

    from conftest import SHARED_DATASETS

    root, env = _machine(tmp_path, "first")
    env.pop("MLPIPE_DVC_REMOTE", None)  # no remote folder of this machine's: the object storage's dvc/
    source = tmp_path / "ecg.txt"
    shutil.copy(SHARED_DATASETS / "ecg200_train.txt", source)
    add = [MLPIPE, "data", "add", str(source), "--name", "ecg", "--modality", "sequence", "--format", "ucr"]
    added = subprocess.run(add, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert added.returncode == 0, added.stderr[-2000:]
    assert any(name.startswith("dvc/files/md5/") for name in bucket_objects(object_storage))
    identity = ["-c", "user.name=mlpipe tests", "-c", "user.email=tests@mlpipe.invalid"]
    subprocess.run(["git", *identity, "add", "-A"], cwd=root, check=True, capture_output=True)
    subprocess.run(["git", *identity, "commit", "-qm", "ecg"], cwd=root, check=True, capture_output=True)

    clone = tmp_path / "second"
    subprocess.run(["git", "clone", "-q", str(root), str(clone)], check=True)
    pulled = subprocess.run(
        [MLPIPE, "data", "pull"], cwd=clone, env={**env, "MLPIPE_ROOT": str(clone)}, capture_output=True, text=True
    )
    assert pulled.returncode == 0, pulled.stderr[-2000:]
    assert f"Pulled from {object_storage}/dvc" in pulled.stdout
    assert (clone / "data" / "ecg" / "train" / "ecg.txt").read_bytes() == source.read_bytes()


def test_a_shared_copy_replaces_a_local_checkpoint_only_when_it_is_a_finished_fit(tmp_path):
    from tasks.training.mirroring import pull_progress

    shared, here = tmp_path / "shared", tmp_path / "here"
    shared.mkdir()
    (shared / "last.ckpt").write_text("shared epoch 3")
    url = shared.as_uri()  # any fsspec URL: a folder stands in for the bucket

    pull_progress(url, here)  # nothing here: the shared checkpoint comes
    assert (here / "last.ckpt").read_text() == "shared epoch 3"
    (here / "last.ckpt").write_text("local epoch 4")
    pull_progress(url, here)  # a checkpoint here is as new or newer: kept
    assert (here / "last.ckpt").read_text() == "local epoch 4"
    (shared / "result.json").write_text("{}")
    (shared / "best.ckpt").write_text("shared best")
    pull_progress(url, here)  # another machine finished the fit: its folder wins
    assert (here / "result.json").exists() and (here / "last.ckpt").read_text() == "shared epoch 3"
