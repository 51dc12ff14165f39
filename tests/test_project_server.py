"""The project's Prefect server (tasks/infra/project_server.py): started by the first command that
needs Prefect's API, reused by the next ones, one for two commands at once, replaced when its record
is stale, stopped when idle or by `mlpipe down`; every command-line run in it and its UI."""

import base64
import json
import os
import re
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import psutil
import pytest
from conftest import make_workspace
from mlpipe_up import MLPIPE, Up

from tasks.infra.local_servers import port_is_free
from tasks.infra.project_server import MODULE, RECORD

START = """
from tasks.infra.project_server import ensure
from tasks.infra.settings import get_settings
server = ensure(get_settings(), idle_minutes={idle})
print(server.port, server.pid)
"""


@pytest.fixture
def project(tmp_path: Path):
    """A project folder whose commands use the project's server; `mlpipe down` at the end."""
    root = make_workspace(tmp_path / "project")
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_API_AUTH_STRING")}
    env |= {"MLPIPE_ROOT": str(root), "MLPIPE_PREFECT_SERVER": "project"}
    yield root, env
    subprocess.run([MLPIPE, "down"], env=env, capture_output=True, timeout=60)


def _servers_of(root: Path) -> list[psutil.Process]:
    """The project's server processes running now (their PREFECT_HOME is the project's)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if MODULE in (process.info["cmdline"] or []) and process.environ().get("PREFECT_HOME") == str(
                root / ".prefect"
            ):
                found.append(process)
        except psutil.Error:
            continue
    return found


def _start(env: dict, idle: float = 30) -> subprocess.Popen:
    code = START.replace("{idle}", str(idle))
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)


def _started(process: subprocess.Popen) -> tuple[int, int]:
    out, _ = process.communicate(timeout=180)
    assert process.returncode == 0
    port, pid = out.split()
    return int(port), int(pid)


def _get(url: str, auth_string: str) -> dict | str:
    # The UI serves its page to a browser's request (Accept: text/html), not to any GET.
    request = urllib.request.Request(url, headers={"Accept": "text/html, application/json"})
    request.add_header("Authorization", f"Basic {base64.b64encode(auth_string.encode()).decode()}")
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read().decode()
    return json.loads(body) if response.headers.get_content_type() == "application/json" else body


def test_two_commands_at_once_start_one_server_and_a_stale_record_is_replaced(project):
    root, env = project
    first, second = _start(env), _start(env)
    assert _started(first) == _started(second)  # the second waited for the first one's server
    (server,) = _servers_of(root)

    # Killed without a word (a reboot, `kill -9`): its record names a dead process; the next command starts one.
    server.kill()
    server.wait(timeout=30)
    assert (root / ".prefect" / RECORD).exists()
    port, pid = _started(_start(env))
    assert pid != server.pid and [p.pid for p in _servers_of(root)] == [pid]

    # The record names a live process that is not the server, on a port another program listens on.
    other = subprocess.run([MLPIPE, "down"], env=env, capture_output=True, text=True, timeout=60)
    assert other.stdout.strip() == f"Stopped the project's Prefect server (http://127.0.0.1:{port})."
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        taken = listener.getsockname()[1]
        record = {"port": taken, "pid": os.getpid(), "started": psutil.Process().create_time()}
        (root / ".prefect" / RECORD).write_text(json.dumps(record))
        port, pid = _started(_start(env))
        assert port != taken and pid != os.getpid() and [p.pid for p in _servers_of(root)] == [pid]


def test_the_server_stops_itself_when_idle_and_down_stops_it(project):
    root, env = project
    port, pid = _started(_start(env, idle=0.1))  # six seconds without a call
    process = psutil.Process(pid)
    process.wait(timeout=60)
    assert "No API call for 6 s: stopping." in (root / ".prefect" / "server.log").read_text()
    assert port_is_free(port)

    port, pid = _started(_start(env))
    down = subprocess.run([MLPIPE, "down"], env=env, capture_output=True, text=True, timeout=60)
    assert (
        down.returncode == 0
        and down.stdout.strip() == f"Stopped the project's Prefect server (http://127.0.0.1:{port})."
    )
    assert not psutil.pid_exists(pid) and port_is_free(port) and not (root / ".prefect" / RECORD).exists()
    again = subprocess.run([MLPIPE, "down"], env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and again.stdout.strip() == "No Prefect server runs for this project."


def test_deploy_without_a_configured_server_uses_the_project_server(project):
    root, env = project
    deployed = subprocess.run([MLPIPE, "deploy"], env=env, capture_output=True, text=True, timeout=300)
    assert deployed.returncode == 0, deployed.stderr[-2000:]
    (server,) = _servers_of(root)
    port = json.loads((root / ".prefect" / RECORD).read_text())["port"]
    assert "Deployed training_pipeline/train to 'mlpipe'" in deployed.stdout
    assert f"runs: http://127.0.0.1:{port}/api/deployments" in deployed.stdout
    auth = "mlpipe:" + (root / ".prefect" / "api-auth").read_text()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/deployments/filter", data=b"{}", method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("Authorization", f"Basic {base64.b64encode(auth.encode()).decode()}")
    with urllib.request.urlopen(request, timeout=10) as response:
        names = {d["name"] for d in json.loads(response.read())}
    assert {"train", "train-digits"} <= names  # in the project's server, which outlives the command
    assert server.is_running()


def test_a_command_line_run_is_in_the_ui_that_mlpipe_up_serves(project):
    """The run's "View at" link opens it in the UI after the run ended; the MLflow run keeps the link;
    the run's log has one progress line per epoch."""
    import mlflow
    from test_ui import SCREENSHOTS, chromium_page

    root, env = project
    run = subprocess.run(
        [MLPIPE, "run", "--dataset", "digits", "--models", "cnn", "--max-epochs", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    log = run.stdout + run.stderr
    epochs = re.findall(r"cnn: epoch (\d)/2, val/accuracy 0\.\d{4}", log)
    assert epochs == ["1", "2"], log[-3000:]  # not a terminal: one line per epoch, none redrawn
    assert "FutureWarning" not in log and "Validating input example" not in log
    (link,) = re.findall(r"View at (http://127\.0\.0\.1:\d+/runs/flow-run/([0-9a-f-]{36}))", log)
    url, flow_run_id = link
    client = mlflow.MlflowClient(f"sqlite:///{root / 'mlflow' / 'mlflow.db'}")
    (experiment,) = [e for e in client.search_experiments() if e.name == "digits"]
    stored = {r.data.tags.get("prefect_flow_run_url") for r in client.search_runs([experiment.experiment_id])}
    assert url in stored

    up = Up(env)
    try:
        assert url.startswith(f"http://127.0.0.1:{up.prefect_port}/")  # the same server: adopted, not another
        assert "(the project's server, running already)" in up.seen[0]
        api = f"http://127.0.0.1:{up.prefect_port}/api"
        flow_run = _get(f"{api}/flow_runs/{flow_run_id}", up.auth_string)
        assert flow_run["state_type"] == "COMPLETED" and flow_run["name"].startswith("digits-cnn-")
        assert "<html" in _get(url, up.auth_string).lower()  # the link is the UI's page
        with chromium_page() as page:
            from playwright.sync_api import expect

            page.goto(f"http://127.0.0.1:{up.prefect_port}/dashboard")  # the UI asks for the password once
            page.get_by_placeholder("admin:pass").fill(up.auth_string)
            page.keyboard.press("Enter")
            expect(page.get_by_role("heading", name="Flow Runs")).to_be_visible(timeout=60_000)
            page.goto(url)
            expect(page.get_by_text(flow_run["name"]).first).to_be_visible(timeout=60_000)
            expect(page.get_by_text("Completed").first).to_be_visible()
            expect(page.get_by_text(re.compile(r"cnn: epoch 2/2")).first).to_be_visible(timeout=60_000)  # its logs
            page.screenshot(path=SCREENSHOTS / "prefect-command-line-run.png", full_page=True)
    finally:
        up.interrupt()
    assert up.down.stdout.strip() == f"Stopped the project's Prefect server (http://127.0.0.1:{up.prefect_port})."
    assert not _servers_of(root)
