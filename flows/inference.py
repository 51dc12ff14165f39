"""Batch inference as a Prefect flow, so it can be scheduled and triggered like training. Each run
also monitors what it scored (tasks/monitoring): drift past params.yaml's limits is an event that
`mlpipe serve`'s training deployments retrain on."""

from prefect import flow, get_run_logger

from tasks.data.builtin import BUILT_IN
from tasks.infra.errors import MlpipeError
from tasks.infra.params import load_params
from tasks.infra.runs import fail_clearly, filter_failed_task_lines
from tasks.infra.settings import get_settings
from tasks.monitoring.tasks import monitor_batch
from tasks.monitoring.watch import watch_for
from tasks.registry.tasks import predict_file_task


@flow(name="batch_inference", flow_run_name="predict-{dataset}")
def batch_inference(
    dataset: str = BUILT_IN[0],
    input_path: str = "data/new.csv",
    output_path: str = "outputs/predictions.csv",
    alias: str = "champion",
) -> dict:
    """Label every row of input_path with the data set's @champion (or another alias: compact, the
    variant `mlpipe compress` registered) and write them to output_path, a path under the
    project's outputs/ folder (or MLPIPE_PREDICTIONS_DIR); then compare the batch with what that
    version was trained and tested on."""
    filter_failed_task_lines()
    try:
        limits = load_params(get_settings()).monitoring
        summary = predict_file_task(dataset, input_path, output_path, alias, watch_for(limits))
        summary["monitoring"] = monitor_batch(summary.pop("watched"), input_path)
    except MlpipeError as error:  # no champion, a missing file, a path outside outputs/: said once
        return fail_clearly(error)
    get_run_logger().info(
        "%s v%s labelled %d rows: %s; %s",
        dataset,
        summary["version"],
        summary["rows"],
        summary["labels"],
        summary["monitoring"]["summary"],
    )
    return summary
