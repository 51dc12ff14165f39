"""`mlpipe deploy` to a work pool and `mlpipe worker` running a flow run in its own project folder.

A module of its own: `mlpipe serve` (test_deployments.py) has stopped by now, so only the
worker can pick up the run."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from conftest import make_workspace
from prefect.client.schemas.actions import WorkPoolUpdate
from prefect.exceptions import PrefectHTTPStatusError
from prefect_runs import prefect_client, wait_for_deployment, wait_for_flow_run

from flows.work_pool import BASE_JOB_TEMPLATE
from tasks.infra.settings import Settings

MLPIPE = str(Path(sys.executable).with_name("mlpipe"))


@pytest.fixture
def pool_deployments(prefect_api):
    """Removes what `mlpipe deploy` registered: test_deployments' `mlpipe serve` reuses the names."""
    yield
    with prefect_client() as client:
        for deployment in client.read_deployments():
            if deployment.work_pool_name == "mlpipe":
                client.delete_deployment(deployment.id)


def test_a_worker_in_another_folder_runs_what_mlpipe_deploy_registered(pool_deployments, tmp_path):
    deployer, machine = make_workspace(tmp_path / "deployer"), make_workspace(tmp_path / "worker")
    env = {**os.environ, "MLPIPE_ROOT": str(deployer)}
    deployed = subprocess.run([MLPIPE, "deploy"], env=env, capture_output=True, text=True, timeout=120)
    assert deployed.returncode == 0, deployed.stdout[-2000:] + deployed.stderr[-2000:]
    assert "Created the process work pool 'mlpipe'" in deployed.stdout, deployed.stdout
    train = wait_for_deployment("training_pipeline/train")
    assert train.work_pool_name == "mlpipe" and not train.pull_steps  # nothing ties it to the deployer's folder
    assert train.parameter_openapi_schema["properties"]["max_epochs"]["description"]  # serve's form, hints and all

    marker = tmp_path / "pwned"
    with prefect_client() as client:
        assert client.read_work_pool("mlpipe").base_job_template == BASE_JOB_TEMPLATE
        for job_variables in ({"command": f"touch {marker}"}, {"env": {"MLPIPE_PREDICTIONS_DIR": "/"}}):
            with pytest.raises(PrefectHTTPStatusError, match="422"):  # the caller chooses parameters, not what runs
                client.create_flow_run_from_deployment(train.id, job_variables=job_variables)
        # A deployment someone else registered in the pool, whose pull step would run a command.
        evil = client.create_deployment(
            flow_id=client.create_flow_from_name("training_pipeline"),
            name="evil",
            work_pool_name="mlpipe",
            entrypoint="flows.training.training_pipeline",
            pull_steps=[{"prefect.deployments.steps.run_shell_script": {"script": f"touch {marker}"}}],
        )
        refused = client.create_flow_run_from_deployment(evil, parameters={"dataset": "digits"})
        flow_run = client.create_flow_run_from_deployment(
            train.id, parameters={"dataset": "digits", "models": ["cnn"], "max_epochs": 1}
        )
    worker = subprocess.Popen(
        [MLPIPE, "worker"],
        env={**os.environ, "MLPIPE_ROOT": str(machine), "PREFECT_WORKER_QUERY_SECONDS": "2"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        refused, flow_run = wait_for_flow_run(refused.id), wait_for_flow_run(flow_run.id)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
    assert flow_run.state.is_completed(), flow_run.state.message
    assert refused.state.is_crashed() and "has pull steps" in refused.state.message
    assert not marker.exists()
    assert mlflow.MlflowClient(Settings(root=machine).tracking_uri).get_model_version_by_alias("digits", "champion")
    assert not (deployer / "mlflow").exists() and (machine / "outputs").is_dir()  # the worker's folder

    # A pool whose template was edited through the API: the worker will not serve it.
    with prefect_client() as client:
        template = {"job_configuration": {"command": f"touch {marker}"}, "variables": {"type": "object"}}
        client.update_work_pool("mlpipe", WorkPoolUpdate(base_job_template=template))
    env = {**os.environ, "MLPIPE_ROOT": str(machine)}
    edited = subprocess.run([MLPIPE, "worker"], env=env, capture_output=True, text=True, timeout=120)
    assert edited.returncode == 1 and edited.stderr.strip() == (
        "error: the work pool 'mlpipe' was not made by `mlpipe deploy` or was edited since: "
        "run mlpipe deploy --pool mlpipe"
    )
    redeployed = subprocess.run([MLPIPE, "deploy"], env=env, capture_output=True, text=True, timeout=120)
    assert "Fixed the job template of the work pool 'mlpipe'" in redeployed.stdout
    assert not marker.exists()


def test_serve_deploy_and_worker_with_temporary_servers_say_how_to_start_one(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env |= {"MLPIPE_ROOT": str(make_workspace(tmp_path / "project")), "PREFECT_HOME": str(tmp_path / "home")}
    for command in ("serve", "deploy", "worker"):
        done = subprocess.run([MLPIPE, command], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 1
        assert done.stderr.strip() == (
            f"error: mlpipe {command} needs a Prefect server, and MLPIPE_PREFECT_SERVER=temporary starts none: "
            "start one with `mlpipe up`, then export PREFECT_API_URL it prints"
        )
