"""The production profile: `mlpipe up` with Prefect and MLflow on PostgreSQL and the artifacts, the
cache, the checkpoints and the data in S3-compatible object storage (moto's server); a run from
another project folder keeps nothing that matters on its own disk."""

import os
import subprocess
import uuid

import mlflow
import psycopg
from conftest import make_workspace
from engines import bucket_objects, new_database
from mlpipe_up import MLPIPE, Up


def test_a_run_against_the_production_profile_keeps_what_matters_in_the_shared_engines(
    workspace, postgres_url, object_storage, tmp_path
):
    suffix = uuid.uuid4().hex[:8]
    store = new_database(postgres_url, f"mlflow_{suffix}")
    prefect_db = new_database(postgres_url, f"prefect_{suffix}").replace("+psycopg", "+asyncpg")
    profile = {"MLFLOW_TRACKING_URI": store, "PREFECT_API_DATABASE_CONNECTION_URL": prefect_db}
    up = Up({**os.environ, "MLPIPE_ROOT": str(workspace), **profile})
    try:
        assert f"artifacts: {object_storage}/mlflow-artifacts" in "".join(up.seen)
        client_root = make_workspace(tmp_path / "client")
        tracking = f"http://127.0.0.1:{up.mlflow_port}"
        env = {**os.environ, "MLPIPE_ROOT": str(client_root), "MLFLOW_TRACKING_URI": tracking}
        env |= {"PREFECT_API_URL": f"http://127.0.0.1:{up.prefect_port}/api"}
        env.pop("PREFECT_API_DATABASE_CONNECTION_URL", None)
        done = subprocess.run(
            [MLPIPE, "run", "--models", "cnn", "--max-epochs", "1"], env=env, capture_output=True, text=True,
            timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        assert "Registered model 'digits' version 1" in done.stdout

        # The model's files went through the tracking server's proxy to the bucket.
        objects = bucket_objects(object_storage)
        assert any(o.startswith("mlflow-artifacts/") and o.endswith("/MLmodel") for o in objects)
        assert any(o.startswith("cache/") for o in objects) and any(o.endswith("/best.ckpt") for o in objects)
        client = mlflow.MlflowClient(tracking)
        version = client.get_model_version_by_alias("digits", "champion")
        assert client.get_run(version.run_id).info.artifact_uri.startswith("mlflow-artifacts:")
        assert not (client_root / "mlflow").exists()  # no embedded store on the run's disk
        # Prefect's flow run is in PostgreSQL.
        with psycopg.connect(prefect_db.replace("+asyncpg", "")) as connection:
            (runs,) = connection.execute("select count(*) from flow_run where state_type = 'COMPLETED'").fetchone()
        assert runs >= 1
    finally:
        up.interrupt()
