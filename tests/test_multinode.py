"""DDP across nodes, as far as one machine allows: the pipeline's fit is node 0, and a second
"node" joins it by running the worker on the fit's job file, with Lightning's own variables
(MASTER_ADDR, MASTER_PORT, NODE_RANK, PL_TRAINER_NUM_NODES). Two CPU processes over gloo."""

import os
import subprocess
import sys
import threading
import time

import mlflow
import pytest

from tasks.infra.local_servers import free_port
from tasks.infra.settings import Settings


# A DDP fit of two processes and its rendezvous (~40 s): in `make test-slow`.
@pytest.mark.slow
def test_a_second_node_joins_the_fit_by_its_job_file(prefect_api, workspace, monkeypatch):
    from flows.training import training_pipeline

    cluster = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "PL_TRAINER_NUM_NODES": "2"}
    for name, value in {**cluster, "NODE_RANK": "0"}.items():
        monkeypatch.setenv(name, value)
    joined: list[subprocess.CompletedProcess] = []

    def second_node() -> None:
        deadline = time.monotonic() + 300
        while not (jobs := list((workspace / "outputs" / "digits" / "training").glob("cnn-*/job.pkl"))):
            if time.monotonic() > deadline:
                return
            time.sleep(0.2)
        command = [sys.executable, "-m", "tasks.training.fit_worker", str(jobs[0])]
        env = {**os.environ, **cluster, "NODE_RANK": "1"}
        joined.append(subprocess.run(command, env=env, capture_output=True, text=True, timeout=600))

    node = threading.Thread(target=second_node, daemon=True)
    node.start()
    registration = training_pipeline(dataset="digits", models=["cnn"], max_epochs=4, seed=3, devices=1, strategy="ddp")
    node.join(timeout=120)

    assert joined and joined[0].returncode == 0, joined[0].stderr[-2000:] if joined else "the second node never ran"
    client = mlflow.MlflowClient(Settings(root=workspace).tracking_uri)
    run = client.get_run(registration.candidate_run_ids["cnn"])
    assert run.data.tags["world_size"] == "2"  # one process on each "node"
    per_rank = [int(n) for n in run.data.tags["samples_per_rank"].split(",")]
    assert len(per_rank) == 2 and abs(per_rank[0] - per_rank[1]) <= 2  # each trained on half the rows
    assert run.data.metrics["test/accuracy"] > 0.8  # both halves of the data trained one model
