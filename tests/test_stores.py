"""The registry under real conditions: two runs at once on one store, and PostgreSQL as the store."""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mlflow
import yaml
from mlpipe_up import Up

from flows.training import training_pipeline
from tasks.infra.settings import CODE_ROOT, Settings
from tasks.registry.leaderboard import leaderboard

MLPIPE = str(Path(sys.executable).with_name("mlpipe"))


def test_two_whole_runs_at_once_on_one_sqlite_store_lose_no_version_and_crown_the_better(prefect_api, workspace):
    """Whole `mlpipe run`s side by side on SQLite; that they contend for the promotion lock at the
    same moment is the synchronised test below (test_two_machines_promoting_at_once...)."""
    env = {**os.environ, "MLPIPE_ROOT": str(workspace), "PREFECT_API_URL": prefect_api}
    # Networks only (params.yaml turns the baseline off), so that one run is clearly the better.
    params = yaml.safe_load((CODE_ROOT / "params.yaml").read_text())
    params["selection"]["baseline"] = False
    (workspace / "params.yaml").write_text(yaml.safe_dump(params))

    def run(epochs: int) -> subprocess.CompletedProcess:
        args = [MLPIPE, "run", "--models", "cnn", "--max-epochs", str(epochs), "--learning-rate", "0.002"]
        return subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)

    with ThreadPoolExecutor(max_workers=2) as pool:
        weak, strong = pool.map(run, [1, 8])
    assert weak.returncode == 0, weak.stderr[-2000:]
    assert strong.returncode == 0, strong.stderr[-2000:]

    client = mlflow.MlflowClient(Settings(root=workspace).tracking_uri)
    versions = {str(v.version): v for v in client.search_model_versions("name='digits'")}
    assert sorted(versions) == ["1", "2"]
    assert {v.tags["family"] for v in versions.values()} == {"cnn"}
    scores = {v: float(versions[v].tags["promotion.challenger_accuracy"]) for v in versions}
    champion = str(client.get_model_version_by_alias("digits", "champion").version)
    assert champion == max(scores, key=scores.get), (scores, [versions[v].tags["promotion"] for v in versions])


def test_two_processes_opening_a_new_sqlite_store_at_once_both_get_the_experiment(tmp_path):
    # Without a lock both ran MLflow's table creation: "table ... already exists".
    script = (
        "import sys; from pathlib import Path; from tasks.registry.store import connect; "
        "from tasks.infra.settings import Settings; print(connect(Settings(root=Path(sys.argv[1])), 'digits'))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLPIPE_ROOT")}
    for attempt in range(2):
        root = tmp_path / str(attempt)
        command = [sys.executable, "-c", script, str(root)]
        pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
        processes = [subprocess.Popen(command, env=env, **pipes) for _ in range(2)]
        outcomes = [p.communicate(timeout=120) for p in processes]
        assert [p.returncode for p in processes] == [0, 0], [err[-1500:] for _, err in outcomes]
        assert [out.split()[-1] for out, _ in outcomes] == ["1", "1"]


def test_the_pipeline_registers_into_postgresql(prefect_api, workspace, postgres_url, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", postgres_url)

    registration = training_pipeline(dataset="digits", models=["cnn"], max_epochs=1)

    client = mlflow.MlflowClient(postgres_url)
    assert str(client.get_model_version_by_alias("digits", "champion").version) == registration.version == "1"
    rows = leaderboard("digits", Settings(root=workspace))
    assert {row["family"] for row in rows} == {"cnn", "baseline"}
    (row,) = [row for row in rows if row["registered_version"] == 1]
    assert row["family"] == registration.best_family and "champion" in row["aliases"]
    assert not (workspace / "mlflow" / "mlflow.db").exists()  # nothing went to the SQLite default


def test_up_serves_both_uis_and_down_stops_them(workspace):
    import urllib.request

    from tasks.infra.local_servers import port_is_free

    up = Up({**os.environ, "MLPIPE_ROOT": str(workspace)})
    try:
        assert f"Prefect UI: http://127.0.0.1:{up.prefect_port}\n" in up.seen
        # The classic pages for models, not MLflow 3's GenAI view; the project's own Prefect database.
        assert (
            up.seen[1] == f"MLflow UI:  http://127.0.0.1:{up.mlflow_port}/#/experiments?workflowType=machine_learning\n"
        )
        assert (workspace / ".prefect" / "prefect.db").exists()
        with urllib.request.urlopen(f"http://127.0.0.1:{up.prefect_port}/api/health", timeout=10) as response:
            assert response.status == 200
        # Its API takes calls with the project's password only (a page that rebinds its host name
        # to 127.0.0.1 is same-origin: CORS would not stop it); the password is never printed.
        password = workspace / ".prefect" / "api-auth"
        assert password.stat().st_mode & 0o777 == 0o600 and password.read_text() not in "".join(up.seen)
        assert _status(f"http://127.0.0.1:{up.prefect_port}/api/deployments/filter") == 401
        assert _status(f"http://127.0.0.1:{up.prefect_port}/api/deployments/filter", up.auth_string) == 200
        assert _status(f"http://127.0.0.1:{up.prefect_port}/api/deployments/filter", "mlpipe:guess") == 401
        # This project's commands send it without being told.
        env = {
            **os.environ,
            "MLPIPE_ROOT": str(workspace),
            "PREFECT_API_URL": f"http://127.0.0.1:{up.prefect_port}/api",
        }
        deployed = subprocess.run([MLPIPE, "deploy"], env=env, capture_output=True, text=True, timeout=180)
        assert deployed.returncode == 0 and "Deployed training_pipeline/train" in deployed.stdout, deployed.stderr
        wrong = {**env, "PREFECT_API_AUTH_STRING": "mlpipe:guess"}
        refused = subprocess.run([MLPIPE, "deploy"], env=wrong, capture_output=True, text=True, timeout=180)
        assert refused.returncode == 1 and refused.stderr.strip() == (
            f"error: the Prefect API at http://127.0.0.1:{up.prefect_port}/api refused the call: set "
            "PREFECT_API_AUTH_STRING to its password (`mlpipe up` keeps the project's in .prefect/api-auth)"
        )
        with urllib.request.urlopen(f"http://127.0.0.1:{up.mlflow_port}/", timeout=10) as response:
            assert "MLflow" in response.read().decode()
        # A browser asks before a page elsewhere may POST JSON to the API (a CORS preflight): only the UI may.
        ui, elsewhere = f"http://127.0.0.1:{up.prefect_port}", "http://attacker.example"
        assert _preflight(f"{ui}/api/deployments/filter", ui) == ui
        assert _preflight(f"{ui}/api/deployments/filter", elsewhere) is None
        out = up.interrupt()
    finally:
        up.interrupt()  # on a failed assertion too: a killed `mlpipe up` would leave its servers running
    assert up.process.returncode == 0, up.process.stderr.read()
    assert "Stopped. The project's Prefect server goes on for this project's commands until 30 minutes" in out
    # Ctrl-C stopped MLflow's server, not Prefect's: `mlpipe down` (in interrupt()) found it running.
    assert up.down.stdout.strip() == f"Stopped the project's Prefect server (http://127.0.0.1:{up.prefect_port})."
    assert port_is_free(up.prefect_port) and port_is_free(up.mlflow_port)


def _status(url: str, auth_string: str | None = None) -> int:
    """The status of a POST to Prefect's API, with the auth string as Prefect's client sends it."""
    import base64
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=b"{}", method="POST", headers={"Content-Type": "application/json"})
    if auth_string is not None:
        request.add_header("Authorization", f"Basic {base64.b64encode(auth_string.encode()).decode()}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as refused:
        return refused.code


def _preflight(url: str, origin: str) -> str | None:
    """The origin the server allows for a cross-origin POST from `origin`, or None."""
    import urllib.error
    import urllib.request

    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    request = urllib.request.Request(url, method="OPTIONS", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.headers.get("access-control-allow-origin")
    except urllib.error.HTTPError as refused:  # Starlette answers a disallowed origin with 400
        return refused.headers.get("access-control-allow-origin")
