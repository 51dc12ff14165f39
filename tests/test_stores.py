"""The registry under real conditions: two runs at once on one store, and PostgreSQL as the store."""

import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mlflow
import pytest
import yaml
from conftest import free_port

from flows.parameters import PipelineParams
from flows.training import training_pipeline
from tasks.registry import leaderboard
from tasks.settings import CODE_ROOT, Settings

MLPIPE = str(Path(sys.executable).with_name("mlpipe"))


def test_two_runs_at_once_lose_no_version_and_crown_the_better(prefect_api, workspace):
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
    scores = {v: float(versions[v].tags["test/accuracy"]) for v in versions}
    champion = str(client.get_model_version_by_alias("digits", "champion").version)
    assert champion == max(scores, key=scores.get), (scores, [versions[v].tags["promotion"] for v in versions])


def test_two_processes_opening_a_new_sqlite_store_at_once_both_get_the_experiment(tmp_path):
    # Without a lock both ran MLflow's table creation: "table ... already exists".
    script = (
        "import sys; from pathlib import Path; from tasks.registry import connect; "
        "from tasks.settings import CODE_ROOT, Settings; print(connect(Settings(root=Path(sys.argv[1])), 'digits'))"
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


def _postgres_bin(name: str) -> str | None:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(found[-1]) if found else shutil.which(name)


@pytest.fixture(scope="module")
def postgres_url():
    """A real PostgreSQL server (Debian's package) on a free loopback port, for this module."""
    initdb, pg_ctl = _postgres_bin("initdb"), _postgres_bin("pg_ctl")
    if not initdb:
        pytest.skip("PostgreSQL is not installed (.ci/run installs Debian's postgresql)")
    # PostgreSQL refuses to run as root: run it as the package's postgres user then.
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    folder = Path(tempfile.mkdtemp(prefix="mlpipe-pg-"))
    if as_user:
        shutil.chown(folder, "postgres")
    data, port = folder / "data", free_port()
    subprocess.run([*as_user, initdb, "-D", str(data), "-U", "mlpipe", "--auth=trust"], check=True, capture_output=True)
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
    # The server outlives pg_ctl: it must write to a log file, not to pipes that we would wait on forever.
    start = [*as_user, pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "server.log"), "-w", "start"]
    subprocess.run(start, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, timeout=120)
    try:
        createdb = [_postgres_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "mlpipe", "mlflow"]
        subprocess.run(createdb, check=True, capture_output=True)
        yield f"postgresql+psycopg://mlpipe@127.0.0.1:{port}/mlflow"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "fast", "stop"], stdout=subprocess.DEVNULL, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


def test_the_pipeline_registers_into_postgresql(prefect_api, workspace, postgres_url, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", postgres_url)

    registration = training_pipeline(PipelineParams(dataset="digits", models=["cnn"], max_epochs=1))

    client = mlflow.MlflowClient(postgres_url)
    assert str(client.get_model_version_by_alias("digits", "champion").version) == registration.version == "1"
    rows = leaderboard("digits", Settings(root=workspace))
    assert {row["family"] for row in rows} == {"cnn", "baseline"}
    (row,) = [row for row in rows if row["registered_version"] == 1]
    assert row["family"] == registration.best_family and "champion" in row["aliases"]
    assert not (workspace / "mlflow" / "mlflow.db").exists()  # nothing went to the SQLite default


def test_up_serves_both_uis_and_stops_them_on_ctrl_c(workspace):
    import queue
    import signal
    import threading
    import time
    import urllib.request

    from tasks.servers import port_is_free

    prefect_port, mlflow_port = free_port(), free_port()
    env = {**os.environ, "MLPIPE_ROOT": str(workspace)}
    args = [MLPIPE, "up", "--prefect-port", str(prefect_port), "--mlflow-port", str(mlflow_port)]
    up = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    # Read stdout in a thread: a blocking readline() on a silent process would hang the test.
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in up.stdout], daemon=True)
    reader.start()
    try:
        seen: list[str] = []
        deadline = time.monotonic() + 240
        while not any(line.startswith("Logs in") for line in seen):
            assert time.monotonic() < deadline, f"mlpipe up printed only {seen}"
            assert up.poll() is None, up.stderr.read()
            try:
                seen.append(lines.get(timeout=1))
            except queue.Empty:
                continue
        assert f"Prefect UI: http://127.0.0.1:{prefect_port}\n" in seen
        assert seen[1].startswith(f"MLflow UI:  http://127.0.0.1:{mlflow_port}")
        with urllib.request.urlopen(f"http://127.0.0.1:{prefect_port}/api/health", timeout=10) as response:
            assert response.status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{mlflow_port}/", timeout=10) as response:
            assert "MLflow" in response.read().decode()
        up.send_signal(signal.SIGINT)
        up.wait(timeout=60)
        reader.join(timeout=10)
    finally:
        if up.poll() is None:
            up.kill()
    err = up.stderr.read()
    assert up.returncode == 0, err
    out = "".join(seen)
    while not lines.empty():
        out += lines.get()
    assert "Stopped." in out
    assert port_is_free(prefect_port) and port_is_free(mlflow_port)
