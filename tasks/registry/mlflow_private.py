"""MLflow's private parts that mlpipe relies on, in one place, each with the reason no public API
does the job. pyproject.toml pins MLflow's minor version, and tests/test_private_apis.py fails
loudly when an upgrade moves one of them."""


def run_context_tags(tags: dict) -> dict:
    """`tags` with the source and user tags `mlflow.start_run` gives a run (mlflow.source.name,
    mlflow.user, the git commit). A run created with `MlflowClient.create_run`, the one public way to
    give it its own start time, gets none of them; `mlflow.tracking.context` resolves them for
    `start_run`, and only there."""
    from mlflow.tracking.context.registry import resolve_tags

    return resolve_tags(tags)
