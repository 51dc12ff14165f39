"""Issue 21: how long from an mlpipe event to the training run it starts, on a real Prefect server
and `mlpipe serve`, as a user runs them. Each repeat sends `mlpipe.data.updated` for the served
data set (debounce 0, so every event fires), then reads when the trigger created the flow run and
when the runner started it (its Running state). The run itself is not the point: it fails at once
on a data set with no data, which keeps each repeat short.

    python event_latency.py            # 5 events, the runner's default poll (PREFECT_RUNNER_POLL_FREQUENCY 10 s)
    POLL=2 python event_latency.py     # a runner that polls every 2 s
"""

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from pipeline_cost import environment, fresh_project

from common import ROOT, save

MLPIPE = str(Path(sys.executable).with_name("mlpipe"))
REPEATS = 5


def main() -> None:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from tasks.infra.events import emit
    from tasks.infra.local_servers import free_port, launch, prefect_server, stop
    from tasks.infra.monitoring_params import DATA_UPDATED

    home = Path(tempfile.mkdtemp(prefix="mlpipe-prefect-"))
    port = free_port()
    (server,) = launch([prefect_server(port, home)], home)
    url = f"http://127.0.0.1:{port}/api"
    root = fresh_project()
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["schedules"] = {"scans": "0 3 1 1 *"}
    params["retraining"]["debounce_seconds"] = 0
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    poll = os.environ.get("POLL", "10")
    env = environment(root) | {"PREFECT_API_URL": url, "PREFECT_RUNNER_POLL_FREQUENCY": poll}
    serving = subprocess.Popen(
        [MLPIPE, "serve"], env=env, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    created, started = [], []
    try:
        with temporary_settings({PREFECT_API_URL: url}), get_client(sync_client=True) as client:
            deployment = wait(lambda: _deployment(client), 180)
            wait(lambda: any(a.name.startswith("retrain scans") for a in client.read_automations()), 60)
            for _ in range(REPEATS):
                known = {r.id for r in _runs(client, deployment)}
                sent = time.time()
                emit(DATA_UPDATED, "scans", {"bench": True})
                run = wait(
                    lambda known=known: next((r for r in _runs(client, deployment) if r.id not in known), None), 120
                )
                created.append(run.created.timestamp() - sent)
                run = wait(lambda run=run: (r := client.read_flow_run(run.id)).start_time and r, 120)
                started.append(run.start_time.timestamp() - sent)
                wait(lambda run=run: client.read_flow_run(run.id).state.is_final(), 120)
    finally:
        os.killpg(serving.pid, signal.SIGINT)
        serving.wait(timeout=60)
        stop([server])
    rows = [
        {"figure": "event to flow run created, median s", "value": round(statistics.median(created), 2)},
        {"figure": "event to flow run created, max s", "value": round(max(created), 2)},
        {
            "figure": f"event to flow run Running, median s (runner polls every {poll} s)",
            "value": round(statistics.median(started), 2),
        },
        {"figure": f"event to flow run Running, max s (runner polls every {poll} s)", "value": round(max(started), 2)},
    ]
    for row in rows:
        row |= {"target": "(a figure to report)", "met": None}
        print(f"{row['figure']}: {row['value']}")
    save(
        "event_latency" if poll == "10" else f"event_latency_poll{poll}",
        "Event to triggered training run (issue 21)",
        rows,
        extra={"created": created, "started": started},
    )


def _deployment(client):
    from prefect.exceptions import ObjectNotFound

    try:
        return client.read_deployment_by_name("training_pipeline/train-scans")
    except ObjectNotFound:
        return None


def _runs(client, deployment) -> list:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    found = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])))
    return [r for r in found if r.created_by and r.created_by.type == "AUTOMATION"]


def wait(probe, timeout: float):
    deadline = time.monotonic() + timeout
    while not (found := probe()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing after {timeout:.0f} s")
        time.sleep(0.2)
    return found


if __name__ == "__main__":
    main()
