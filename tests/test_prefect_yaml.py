"""prefect.yaml: `prefect deploy --all` to a work pool, and a real worker running the flow.

A module of its own: `mlpipe serve` (test_deployments.py) has stopped by now, so only the
worker can pick up the run."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import mlflow
from conftest import make_workspace
from prefect_runs import prefect_client, wait_for_deployment, wait_for_flow_run

from tasks.infra.settings import CODE_ROOT, Settings

BIN = Path(sys.executable).parent


def test_prefect_yaml_deploys_to_a_work_pool_that_a_worker_runs(prefect_api, tmp_path):
    root = make_workspace(tmp_path / "project")
    env = {**os.environ, "MLPIPE_ROOT": str(root)}
    prefect = str(BIN / "prefect")
    subprocess.run(
        [prefect, "work-pool", "create", "mlpipe", "--type", "process"], env=env, check=True, capture_output=True
    )
    deployed = subprocess.run(
        [prefect, "--no-prompt", "deploy", "--all"], env=env, cwd=CODE_ROOT, capture_output=True, text=True, timeout=120
    )
    assert deployed.returncode == 0, deployed.stdout[-2000:] + deployed.stderr[-2000:]
    nightly = wait_for_deployment("training_pipeline/train-digits")
    assert nightly.work_pool_name == "mlpipe" and nightly.schedules[0].schedule.cron == "0 3 * * *"

    train = wait_for_deployment("training_pipeline/train")
    with prefect_client() as client:
        flow_run = client.create_flow_run_from_deployment(
            train.id, parameters={"dataset": "digits", "models": ["cnn"], "max_epochs": 1}
        )
    worker = subprocess.Popen(
        [prefect, "worker", "start", "--pool", "mlpipe"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        flow_run = wait_for_flow_run(flow_run.id)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
    assert flow_run.state.is_completed(), flow_run.state.message
    assert mlflow.MlflowClient(Settings(root=root).tracking_uri).get_model_version_by_alias("digits", "champion")
