"""The Prefect task of batch inference's monitoring: figures to MLflow and the UI, and the
`mlpipe.drift.detected` event that `mlpipe serve`'s triggers retrain on."""

from prefect import get_run_logger, runtime, task
from prefect.cache_policies import NO_CACHE

from tasks.infra.errors import MlpipeError
from tasks.infra.monitoring_params import DRIFT_DETECTED
from tasks.infra.settings import get_settings
from tasks.monitoring.watch import Monitoring


@task(name="monitor_batch", cache_policy=NO_CACHE)
def monitor_batch(monitoring: Monitoring, input_path: str) -> dict:
    """Publish the figures of the batch batch_inference labelled (gathered as it was read:
    tasks/monitoring/watch.py) to MLflow and the UI; say drift past params.yaml's limits as an event."""
    import mlflow
    from prefect.artifacts import create_markdown_artifact

    from tasks.infra.events import emit
    from tasks.infra.runs import artifact_key
    from tasks.monitoring.reporting import log_monitoring_run, markdown
    from tasks.registry.links import run_url
    from tasks.registry.store import mlflow_ui_url

    settings = get_settings()
    dataset = monitoring.dataset
    tags = {"input": input_path, "prefect_flow_run_id": str(runtime.flow_run.id or "none")}
    run_id = log_monitoring_run(monitoring, settings, tags)
    experiment_id = mlflow.MlflowClient().get_run(run_id).info.experiment_id
    link = run_url(mlflow_ui_url(settings), experiment_id, run_id)
    create_markdown_artifact(
        key=f"monitoring-{artifact_key(dataset)}", markdown=markdown(monitoring, link), description=monitoring.summary()
    )
    result = {**monitoring.as_dict(), "mlflow_run_id": run_id, "event": None}
    if monitoring.drifted:
        payload = {"version": monitoring.version, "alias": monitoring.alias, "rows": monitoring.rows}
        payload |= {"checks": [c.as_dict() for c in monitoring.drifted], "mlflow_run_id": run_id, "input": input_path}
        logger = get_run_logger()
        logger.warning("%s: drift: %s", dataset, monitoring.summary())
        try:
            result["event"] = DRIFT_DETECTED if emit(DRIFT_DETECTED, dataset, payload) else None
        except MlpipeError as error:  # the predictions and the figures are in: the retraining waits
            logger.warning("%s", error)
    return result
