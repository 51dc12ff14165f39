"""The environment variables mlpipe reads, each with what it does: the documentation's reference
page is made from this table (docs/hooks/reference.py), and tests/test_docs.py fails when the code
reads a variable that is not here. Where the setting is another tool's own (MLflow's, Prefect's,
AWS's), mlpipe reads it as that tool does and the tool's documentation is the authority."""

# name -> (who defines it, what it does)
VARIABLES: dict[str, tuple[str, str]] = {
    "MLPIPE_ROOT": (
        "mlpipe",
        "The project folder (a DVC repository) every command works in; default: the working directory.",
    ),
    "MLPIPE_STORAGE_URL": (
        "mlpipe",
        "The team's object storage (any fsspec URL: `s3://bucket/prefix`, `gs://`, `az://`): cached task "
        "results, candidates' checkpoints, the default DVC remote and MLflow's artifacts of `mlpipe up`. "
        "Never with a password in it.",
    ),
    "MLPIPE_CACHE_SECRET": (
        "mlpipe",
        "The key that signs cached results (HMAC-SHA256), the same on every machine; default: a Prefect "
        "Secret block `mlpipe-cache-secret`, else a file in `.prefect/`.",
    ),
    "MLPIPE_DVC_REMOTE": (
        "mlpipe",
        "The DVC remote folder `mlpipe data add` sets where none is configured; default: "
        "`~/.cache/mlpipe/dvc-remote` (or `dvc/` in `MLPIPE_STORAGE_URL`).",
    ),
    "MLPIPE_PREFECT_SERVER": (
        "mlpipe",
        "`project` (default): commands share the project's Prefect server, started on demand; `temporary`: "
        "each command starts a Prefect API of its own that ends with it (the tests run so).",
    ),
    "MLPIPE_TEMPORARY_PREFECT_API": (
        "mlpipe",
        "Set by mlpipe itself in a process that runs on its own temporary Prefect API: no lock goes through it.",
    ),
    "MLPIPE_OPTUNA_STORAGE": (
        "mlpipe",
        "Optuna's study storage (an SQLAlchemy URL) when the tracking store is an MLflow server; default: "
        "beside the tracking store (`mlflow/optuna.db`, or a database on the same PostgreSQL server).",
    ),
    "MLPIPE_PREDICTIONS_DIR": (
        "mlpipe",
        "Where the `batch_inference/predict` deployment may write its output; default: `outputs/`.",
    ),
    "MLPIPE_INPUT_ROOT": ("mlpipe", "Where the `batch_inference/predict` deployment may read; default: the project."),
    "MLPIPE_MLFLOW_UI_URL": (
        "mlpipe",
        "The MLflow UI the links mlpipe stores point to; default: http://127.0.0.1:5000.",
    ),
    "MLFLOW_TRACKING_URI": (
        "MLflow",
        "The tracking store and registry: `postgresql+psycopg://...` or an MLflow server's URL; default: "
        "`sqlite:///mlflow/mlflow.db` in the project. A password in it is masked wherever mlpipe shows it.",
    ),
    "MLFLOW_TRACKING_USERNAME": (
        "MLflow",
        "Basic auth for an MLflow server (taken from the URI's user info when set there).",
    ),
    "MLFLOW_TRACKING_PASSWORD": ("MLflow", "Basic auth for an MLflow server, with `MLFLOW_TRACKING_USERNAME`."),
    "PREFECT_API_URL": (
        "Prefect",
        "A Prefect server's API (`http://host:4200/api`); set, it replaces the project's server.",
    ),
    "PREFECT_API_AUTH_STRING": (
        "Prefect",
        "The password of that server's API (the project's: `mlpipe:` and the content of `.prefect/api-auth`).",
    ),
    "DVC_STAGE": ("DVC", "Set by `dvc repro` in a stage's command: `mlpipe run` then leaves DVC's lock to DVC."),
    "NODE_RANK": (
        "Lightning",
        "This node's rank in a multi-node DDP fit (with `MASTER_ADDR`, `MASTER_PORT`, `PL_TRAINER_NUM_NODES`).",
    ),
    "HF_HUB_OFFLINE": (
        "Hugging Face",
        "`1`: a `--backbone` hub id is read from the local Hugging Face cache only, never downloaded.",
    ),
}
