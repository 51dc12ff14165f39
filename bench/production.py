"""The production profile's cost (issue 19): `mlpipe run --dataset digits --models cnn` against
`mlpipe up` with Prefect and MLflow on PostgreSQL and artifacts, cache and checkpoints in S3
(moto's server on loopback), beside the same run with the embedded defaults (a temporary Prefect
API, SQLite, the project's disk). Fixed cost: wall time minus the candidates' `train/seconds`,
median of 3 fresh runs each (nothing cached: a new project, and a new storage prefix, per run).
Also what crosses the network to object storage per run, by part.

    python bench/production.py

Results: bench/results/production.json.
"""

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from pipeline_cost import fresh_project

from common import ROOT, save

sys.path.insert(0, str(ROOT / "tests"))

from engines import bucket_objects, new_bucket, new_database, postgres_server, s3_environment, s3_server  # noqa: E402
from mlpipe_up import Up  # noqa: E402

MLPIPE = str(Path(sys.executable).with_name("mlpipe"))
ARGS = ["run", "--dataset", "digits", "--models", "cnn", "--max-epochs", "2"]
REPEATS = 3
PARTS = {
    "cache/": "Prefect's cached results",
    "digits/training/": "checkpoints",
    "mlflow-artifacts/": "MLflow artifacts",
}


def timed_run(env: dict) -> float:
    started = time.perf_counter()
    done = subprocess.run([MLPIPE, *ARGS], env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"mlpipe run failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def fit_seconds(tracking_uri: str) -> float:
    """train/seconds of the newest run's candidates."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("digits").experiment_id
    (parent,) = client.search_runs(
        [experiment], "tags.`mlpipe.role` = 'pipeline'", order_by=["start_time DESC"], max_results=1
    )
    children = client.search_runs([experiment], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    return sum(run.data.metrics.get("train/seconds", 0.0) for run in children)


def clean_env(root: Path) -> dict:
    env = {
        k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI", "MLPIPE_STORAGE_URL")
    }
    return env | {"MLPIPE_ROOT": str(root), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def embedded() -> list[float]:
    fixed = []
    for _ in range(REPEATS):
        root = fresh_project()
        wall = timed_run(clean_env(root))
        fixed.append(wall - fit_seconds(f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"))
    return fixed


def production() -> tuple[list[float], list[dict]]:
    """Each repeat against servers of its own on new databases: a run on a registry that holds the
    same training already would reuse that version and skip registration."""
    fixed, sent = [], []
    with postgres_server() as postgres, s3_server() as endpoint:
        os.environ.update(s3_environment(endpoint))
        bucket = new_bucket()
        for repeat in range(REPEATS):
            served = f"s3://{bucket}/server-{repeat}"
            profile = {
                "MLFLOW_TRACKING_URI": new_database(postgres, f"mlflow_bench_{repeat}"),
                "PREFECT_API_DATABASE_CONNECTION_URL": new_database(postgres, f"prefect_bench_{repeat}").replace(
                    "+psycopg", "+asyncpg"
                ),
                "MLPIPE_STORAGE_URL": served,
            }
            up = Up(clean_env(fresh_project()) | profile)
            try:
                tracking = f"http://127.0.0.1:{up.mlflow_port}"
                storage = f"s3://{bucket}/run-{repeat}"
                env = clean_env(fresh_project()) | {"MLFLOW_TRACKING_URI": tracking, "MLPIPE_STORAGE_URL": storage}
                env["PREFECT_API_URL"] = f"http://127.0.0.1:{up.prefect_port}/api"
                wall = timed_run(env)
                fixed.append(wall - fit_seconds(tracking))
                run_objects = bucket_objects(storage)
                parts = {
                    label: sum(size for key, size in run_objects.items() if key.startswith(prefix))
                    for prefix, label in PARTS.items()
                    if prefix != "mlflow-artifacts/"
                }
                parts["MLflow artifacts"] = sum(bucket_objects(served).values())
                sent.append(parts)
            finally:
                up.interrupt()
    return fixed, sent


def main() -> None:
    local = embedded()
    remote, sent = production()
    median = {label: statistics.median(s[label] for s in sent) for label in sent[0]}
    rows = [
        {
            "figure": "fixed cost of a run (wall minus Trainer.fit), embedded defaults -> production profile",
            "value": f"{statistics.median(local):.1f} s -> {statistics.median(remote):.1f} s",
            "target": "",
            "met": None,
        },
        {
            "figure": "bytes to object storage per run (digits, cnn + baseline)",
            "value": f"{sum(median.values()) / 1e6:.2f} MB: "
            + ", ".join(f"{label} {size / 1e6:.2f} MB" for label, size in median.items()),
            "target": "",
            "met": None,
        },
    ]
    notes = (
        f"`{' '.join(ARGS)}`, median of {REPEATS} fresh runs each. Production: `mlpipe up` with Prefect "
        "and MLflow on one PostgreSQL server, MLflow's artifacts through its proxy and the cache and "
        "checkpoints in moto's S3 server, all on loopback: the network's latency is not in these figures."
    )
    save(
        "production",
        "The production profile (issue 19)",
        rows,
        notes,
        extra={"embedded": local, "production": remote, "sent": sent},
    )


if __name__ == "__main__":
    main()
