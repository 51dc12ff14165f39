"""The production profile: `mlpipe up` with Prefect and MLflow on PostgreSQL and the artifacts, the
cache and the checkpoints in S3-compatible object storage (moto's server). A run from another
project folder keeps nothing that matters on its own disk, and no password shows anywhere."""

import os
import subprocess
import uuid
from pathlib import Path

import mlflow
import psycopg
from conftest import make_workspace
from engines import bucket_objects, new_database
from mlpipe_up import MLPIPE, Up
from prefect_runs import talking_to


def _command_lines() -> str:
    """Every process's command line, as `ps` shows them to any user of the machine."""
    lines = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            lines.append(cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue  # the process has gone
    return "\n".join(lines)


def test_a_run_against_the_production_profile_keeps_what_matters_in_the_shared_engines_and_shows_no_password(
    workspace, postgres_url, object_storage, tmp_path
):
    from prefect.client.orchestration import get_client

    secret = "s3cret-Pa55"  # the server trusts loopback, so any password connects: what matters is where it shows
    suffix = uuid.uuid4().hex[:8]
    store = new_database(postgres_url, f"mlflow_{suffix}").replace("mlpipe@", f"mlpipe:{secret}@")
    prefect_db = new_database(postgres_url, f"prefect_{suffix}").replace("+psycopg", "+asyncpg")
    prefect_db = prefect_db.replace("mlpipe@", f"mlpipe:{secret}@")
    profile = {"MLFLOW_TRACKING_URI": store, "PREFECT_API_DATABASE_CONNECTION_URL": prefect_db}
    up = Up({**os.environ, "MLPIPE_ROOT": str(workspace), **profile})
    try:
        shown = "".join(up.seen)
        assert f"artifacts: {object_storage}/mlflow-artifacts" in shown
        assert secret not in shown and "mlpipe:***@" in up.seen[2] and "mlpipe:***@" in up.seen[3]
        assert secret not in _command_lines()  # the servers got their databases through the environment

        # A run from another project folder, through a tracking URI with user info (MLflow's basic auth).
        client_root = make_workspace(tmp_path / "client")
        api = f"http://127.0.0.1:{up.prefect_port}/api"
        env = {**os.environ, "MLPIPE_ROOT": str(client_root), "PREFECT_API_URL": api}
        env["PREFECT_API_AUTH_STRING"] = up.auth_string
        env["MLFLOW_TRACKING_URI"] = f"http://alice:{secret}@127.0.0.1:{up.mlflow_port}"
        env.pop("PREFECT_API_DATABASE_CONNECTION_URL", None)
        run = [MLPIPE, "run", "--models", "cnn", "--max-epochs", "1"]
        done = subprocess.run(run, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "Registered model 'digits' version 1" in done.stdout
        assert secret not in done.stdout + done.stderr

        # The model's files went through the tracking server's proxy to the bucket; the cache and
        # the checkpoints are there too; the client's disk holds no registry.
        objects = bucket_objects(object_storage)
        assert any(o.startswith("mlflow-artifacts/") and o.endswith("/MLmodel") for o in objects)
        assert any(o.startswith("cache/") for o in objects) and any(o.endswith("/best.ckpt") for o in objects)
        client = mlflow.MlflowClient(f"http://127.0.0.1:{up.mlflow_port}")
        version = client.get_model_version_by_alias("digits", "champion")
        assert client.get_run(version.run_id).info.artifact_uri.startswith("mlflow-artifacts:")
        assert not (client_root / "mlflow").exists()
        # Prefect's flow run is in PostgreSQL.
        with psycopg.connect(prefect_db.replace("+asyncpg", "")) as connection:
            (runs,) = connection.execute("select count(*) from flow_run where state_type = 'COMPLETED'").fetchone()
        assert runs >= 1

        # No password in what Prefect and MLflow keep: artifacts, logs, run params and tags, version tags.
        with talking_to(api, up.auth_string):
            with get_client(sync_client=True) as prefect:
                artifacts, logs = prefect.read_artifacts(), prefect.read_logs()
        assert artifacts and not [a.key for a in artifacts if secret in str(a.data)]
        assert logs and not [log.message for log in logs if secret in log.message]
        runs = client.search_runs([client.get_experiment_by_name("digits").experiment_id])
        assert runs and not [r.info.run_id for r in runs if secret in str(r.data.params) + str(r.data.tags)]
        versions = client.search_model_versions("name='digits'")
        assert versions and not [v.version for v in versions if secret in str(v.tags)]
        # Unreachable: one line, still without the password.
        down = {**env, "MLFLOW_TRACKING_URI": f"http://alice:{secret}@127.0.0.1:9"}
        failed = subprocess.run(run, capture_output=True, text=True, env=down, timeout=300)
        assert failed.returncode == 1 and secret not in failed.stdout + failed.stderr
        assert "does not answer at http://127.0.0.1:9/health" in failed.stderr
    finally:
        up.interrupt()
