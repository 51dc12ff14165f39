"""Links into the MLflow UI that land on its classic pages for models: MLflow 3 opens an
experiment in its GenAI view (traces, token panels) unless told the workflow is machine learning."""

CLASSIC = "workflowType=machine_learning"
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")  # no "which kind?" pop-up


def run_url(ui: str, experiment_id: str, run_id: str) -> str:
    return f"{ui}/#/experiments/{experiment_id}/runs/{run_id}?{CLASSIC}"


def artifact_url(ui: str, experiment_id: str, run_id: str, path: str) -> str:
    """A run's artifact, opened in MLflow's artifact view (which renders HTML, images, text)."""
    return f"{ui}/#/experiments/{experiment_id}/runs/{run_id}/artifactPath/{path}?{CLASSIC}"


def model_url(ui: str, name: str, version: str | None = None) -> str:
    page = f"{ui}/#/models/{name}" + (f"/versions/{version}" if version is not None else "")
    return f"{page}?{CLASSIC}"
