"""Shared-nothing workers: two `mlpipe worker`s on one work pool, each in a clone of its own, sharing
nothing but the production profile's servers (Prefect and MLflow on PostgreSQL, the artifacts, the
cache, the checkpoints and the DVC remote in moto's S3 server)."""

import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import mlflow
import psutil
import pytest
from conftest import SHARED_DATASETS, make_workspace
from engines import bucket_objects, new_database
from mlpipe_up import MLPIPE, Up
from prefect_runs import prefect_client, talking_to, wait_for_deployment, wait_for_flow_run
from test_resume import epochs_done

IDENTITY = ["-c", "user.name=mlpipe tests", "-c", "user.email=tests@mlpipe.invalid"]


class Worker:
    """`mlpipe worker` in its project folder: one flow run at a time, polling every 2 s."""

    def __init__(self, root: Path, env: dict):
        self.root, self.env = root, {**env, "MLPIPE_ROOT": str(root), "PREFECT_WORKER_QUERY_SECONDS": "2"}
        self.process = None

    def start(self) -> "Worker":
        log = (self.root.parent / f"{self.root.name}-worker.log").open("a")
        self.process = subprocess.Popen(
            [MLPIPE, "worker"], env=self.env, cwd=self.root, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        return self

    def kill(self) -> None:
        """The machine is lost: the worker and the flow run it started, at once."""
        if self.process is None or self.process.poll() is not None:
            return
        family = [self.process, *psutil.Process(self.process.pid).children(recursive=True)]
        for process in family:
            try:
                os.kill(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()

    def ran(self, dataset: str) -> bool:
        return (self.root / "outputs" / dataset).is_dir()


def _trigger(deployment_id, dataset: str, **params):
    with prefect_client() as client:
        return client.create_flow_run_from_deployment(deployment_id, parameters={"dataset": dataset, **params}).id


def _task_states(flow_run_id) -> dict[str, list[str]]:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with prefect_client() as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    states: dict[str, list[str]] = {}
    for run in runs:
        states.setdefault(run.name.rsplit("-", 1)[0], []).append(run.state.name)
    return states


def _completed(flow_run_id):
    flow_run = wait_for_flow_run(flow_run_id, timeout=600)
    assert flow_run.state.is_completed(), flow_run.state.message
    return flow_run


# About seven minutes of whole runs on two cores: in `make test-slow`.
@pytest.mark.slow
def test_two_workers_in_their_own_clones_share_the_cache_the_checkpoints_and_the_registry(
    postgres_url, object_storage, tmp_path
):
    from tasks.registry.aliases import champion_history

    suffix = uuid.uuid4().hex[:8]
    profile = {
        "MLFLOW_TRACKING_URI": new_database(postgres_url, f"mlflow_{suffix}"),
        "PREFECT_API_DATABASE_CONNECTION_URL": new_database(postgres_url, f"prefect_{suffix}").replace(
            "+psycopg", "+asyncpg"
        ),
    }
    up = Up({**os.environ, "MLPIPE_ROOT": str(make_workspace(tmp_path / "servers")), **profile})
    workers: list[Worker] = []
    try:
        env = {
            k: v for k, v in os.environ.items() if k not in ("PREFECT_API_DATABASE_CONNECTION_URL", "MLPIPE_DVC_REMOTE")
        }
        env |= {
            "PREFECT_API_URL": f"http://127.0.0.1:{up.prefect_port}/api",
            "PREFECT_API_AUTH_STRING": up.auth_string,
            "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{up.mlflow_port}",
        }
        # Machine A adds a data set (to the bucket's DVC remote) and commits; machine B clones the project.
        first = make_workspace(tmp_path / "machine-a")
        source = tmp_path / "ecg.txt"
        shutil.copy(SHARED_DATASETS / "ecg200_train.txt", source)
        add = [MLPIPE, "data", "add", str(source), "--name", "ecg", "--modality", "sequence", "--format", "ucr"]
        added = subprocess.run(add, cwd=first, env={**env, "MLPIPE_ROOT": str(first)}, capture_output=True, text=True)
        assert added.returncode == 0, added.stderr[-2000:]
        subprocess.run(["git", *IDENTITY, "add", "-A"], cwd=first, check=True, capture_output=True)
        subprocess.run(["git", *IDENTITY, "commit", "-qm", "ecg"], cwd=first, check=True, capture_output=True)
        shutil.rmtree(first / "data" / "ecg")  # as on a fresh clone: the files come from the bucket
        second = tmp_path / "machine-b"
        subprocess.run(["git", "clone", "-q", str(first), str(second)], check=True)

        deployed = subprocess.run([MLPIPE, "deploy"], env={**env, "MLPIPE_ROOT": str(first)}, capture_output=True)
        assert deployed.returncode == 0, deployed.stderr[-2000:]
        with talking_to(env["PREFECT_API_URL"], up.auth_string):
            train = wait_for_deployment("training_pipeline/train").id
            workers = [Worker(first, env).start(), Worker(second, env).start()]

            # Two data sets at once: each worker takes one.
            quick = {"models": ["cnn"], "max_epochs": 2, "seed": 1}
            runs = {name: _trigger(train, name, **quick) for name in ("digits", "ecg")}
            for flow_run_id in runs.values():
                _completed(flow_run_id)
            (ran_digits,) = [w for w in workers if w.ran("digits")]
            (other,) = [w for w in workers if w is not ran_digits]
            assert other.ran("ecg") and not ran_digits.ran("ecg")

            # The rerun lands on the other worker: validation and training read back from the bucket.
            ran_digits.kill()
            rerun = _completed(_trigger(train, "digits", **quick)).id
            states = _task_states(rerun)
            assert states["validate_dataset"] == ["Cached"] and states["train_model"] == ["Cached"]
            assert not (other.root / "outputs" / "digits" / "training").exists()

            # A candidate killed with its worker resumes from its checkpoint on the other worker.
            slow = {"models": ["rnn"], "max_epochs": 5, "seed": 5}
            killed = _trigger(train, "digits", **slow)
            deadline = time.monotonic() + 300
            while epochs_done(other.root) < 3:  # two epochs' checkpoints pushed to the bucket
                assert other.process.poll() is None and time.monotonic() < deadline, "no three epochs in 300 s"
                time.sleep(0.2)
            other.kill()
            ran_digits.start()
            resumed = _trigger(train, "digits", **slow)
            while not ran_digits.ran("digits") or epochs_done(ran_digits.root) == 0:
                assert time.monotonic() < deadline + 300, "the other worker did not take the run"
                time.sleep(0.2)
            # Meanwhile the first worker, back, trains a challenger: both reach the promotion gate.
            other.start()
            challenger = _trigger(train, "digits", models=["cnn"], max_epochs=3, seed=2)
            _completed(resumed)
            _completed(challenger)
            with prefect_client() as client:
                assert not client.read_flow_run(killed).state.is_completed()

        client = mlflow.MlflowClient(env["MLFLOW_TRACKING_URI"])
        experiment = client.get_experiment_by_name("digits").experiment_id
        (rnn,) = client.search_runs([experiment], "tags.family = 'rnn'")
        assert int(rnn.data.tags["resumed_from_epoch"]) >= 1  # from the killed worker's checkpoint
        versions = {v.version: v for v in client.search_model_versions("name='digits'")}
        assert sorted(versions, key=int) == ["1", "2", "3"]  # the rerun reused v1; two new challengers
        # The promotion lock held: each challenger was judged against the champion of its moment.
        judged = {v: versions[v].tags["promotion.champion_version"] for v in ("2", "3")}
        promoted = {v: versions[v].tags["promotion.decision"] == "promoted" for v in ("2", "3")}
        orders = [(a, b) for a, b in (("2", "3"), ("3", "2")) if judged[a] == "1"]
        assert any(judged[b] == (a if promoted[a] else "1") for a, b in orders), (judged, promoted)
        history = champion_history(client, "digits")
        assert history[0] == "1" and history[-1] == str(client.get_model_version_by_alias("digits", "champion").version)
        # Every version's model files are in the bucket, through the tracking server's proxy.
        objects = bucket_objects(object_storage)
        for version in versions.values():
            run = client.get_run(version.run_id)
            assert run.info.artifact_uri.startswith("mlflow-artifacts:")
        assert sum(name.startswith("mlflow-artifacts/") and name.endswith("/MLmodel") for name in objects) >= 4
        assert any(name.startswith("dvc/files/md5/") for name in objects)
        assert not (first / "mlflow").exists() and not (second / "mlflow").exists()  # no registry on either disk
    finally:
        for worker in workers:
            worker.kill()
        up.interrupt()
