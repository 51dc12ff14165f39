"""The closed loop on a real Prefect server: `mlpipe serve`'s training deployment of a data set
starts a run by itself when `mlpipe data add` makes a new version of it, and when batch
inference finds a drifted batch; a burst of events starts one run (the debounce)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import make_workspace
from prefect_runs import prefect_client, stop_serving, wait_for_deployment, wait_for_flow_run

from tasks.infra.settings import CODE_ROOT

MLPIPE = str(Path(sys.executable).with_name("mlpipe"))
DEBOUNCE = 20  # seconds: longer than the burst below, short enough to wait out


@pytest.fixture(scope="module")
def served_scans(prefect_api, digits, tmp_path_factory):
    """A project whose data set `scans` (digit images) has a training deployment, served, with
    triggers on its events, and networks of one epoch to keep its runs short."""
    root = make_workspace(tmp_path_factory.mktemp("loop") / "project")
    params = yaml.safe_load((CODE_ROOT / "params.yaml").read_text())
    params["schedules"] = {"scans": "0 3 1 1 *"}  # once a year: only the events start runs here
    params["retraining"]["debounce_seconds"] = DEBOUNCE
    for family in ("cnn", "rnn", "transformer"):
        params["families"]["image"][family] |= {"max_epochs": 1}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "MLPIPE_ROOT": str(root), "PREFECT_RUNNER_POLL_FREQUENCY": "2"}
    quiet = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
    add_version(root, quiet, digits.frame.iloc[:400])  # the first version, told to no server
    log = (root / "serve.log").open("w")
    serving = subprocess.Popen(
        [MLPIPE, "serve"], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root, start_new_session=True
    )
    try:
        deployment = wait_for_deployment("training_pipeline/train-scans", serving)
        wait_for_automation("retrain scans on ")
        yield root, env, deployment
    finally:
        stop_serving(serving)
        log.close()
        with prefect_client() as client:  # the module's own deployment goes with its runner
            client.delete_deployment(deployment.id)


def add_version(root: Path, env: dict, rows) -> subprocess.CompletedProcess:
    rows.to_csv(root / "scans.csv", index=False)
    added = subprocess.run(
        [MLPIPE, "data", "add", "scans.csv", "--name", "scans", "--modality", "image"],
        env=env, cwd=root, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert added.returncode == 0, added.stdout[-2000:] + added.stderr[-2000:]
    return added


def wait_for_automation(prefix: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    with prefect_client() as client:
        while not any(a.name.startswith(prefix) for a in client.read_automations()):
            assert time.monotonic() < deadline, f"no automation {prefix}... within {timeout:.0f} s"
            time.sleep(0.5)


def runs_of(deployment) -> list:
    """The runs an event trigger made (the schedule's are made ahead, for January)."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with prefect_client() as client:
        found = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])))
    return sorted((r for r in found if r.created_by and r.created_by.type == "AUTOMATION"), key=lambda r: r.created)


def wait_for_runs(deployment, count: int, timeout: float = 120) -> list:
    deadline = time.monotonic() + timeout
    while len(runs := runs_of(deployment)) < count:
        assert time.monotonic() < deadline, (
            f"{len(runs)} flow runs of {deployment.name}, not {count}, after {timeout:.0f} s"
        )
        time.sleep(0.5)
    return runs


def test_new_data_then_a_drifted_batch_each_start_one_training_run(served_scans, digits, monkeypatch):
    from flows.inference import batch_inference

    root, env, deployment = served_scans
    assert runs_of(deployment) == []

    first = add_version(root, env, digits.frame.iloc[:500])
    assert "Sent mlpipe.data.updated to" in first.stdout
    add_version(root, env, digits.frame.iloc[:600])  # a burst: within the debounce, no second run
    runs = wait_for_runs(deployment, 1)
    time.sleep(3)  # a second run would have been made by now
    runs = runs_of(deployment)
    assert len(runs) == 1, [r.created.isoformat() for r in runs]
    (run,) = runs
    assert run.parameters == {"dataset": "scans"}
    run = wait_for_flow_run(run.id)
    assert run.state.is_completed(), run.state.message
    assert len(runs_of(deployment)) == 1

    time.sleep(max(0.0, DEBOUNCE - (time.time() - run.created.timestamp())) + 1)  # past the debounce
    monkeypatch.setenv("MLPIPE_ROOT", str(root))
    drifted = digits.frame[digits.frame["label"].isin([0, 6])]
    (root / "outputs").mkdir(exist_ok=True)
    (16 - drifted[digits.feature_columns]).to_csv(root / "outputs" / "scanner.csv", index=False)
    summary = batch_inference("scans", "outputs/scanner.csv", "outputs/scanner-labelled.csv")
    assert summary["monitoring"]["event"] == "mlpipe.drift.detected"

    _, retrain = wait_for_runs(deployment, 2)
    try:
        retrain = wait_for_flow_run(retrain.id, timeout=180)
    except AssertionError:
        raise AssertionError(f"{retrain!r}\n{(root / 'serve.log').read_text()[-3000:]}") from None
    assert retrain.state.is_completed(), retrain.state.message


def test_an_event_the_server_refuses_names_the_server_without_its_password():
    """PREFECT_API_URL may carry user info: the line a user reads (and a run's log) masks it."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from tasks.infra.errors import MlpipeError
    from tasks.infra.events import emit

    with (
        temporary_settings({PREFECT_API_URL: "http://mlpipe:s3cret@127.0.0.1:9/api"}),
        pytest.raises(MlpipeError) as error,
    ):
        emit("mlpipe.test", "digits", {})

    assert "s3cret" not in str(error.value) and "http://mlpipe:***@127.0.0.1:9/api" in str(error.value)
