"""Batch inference as a Prefect flow, so it can be scheduled and triggered like training."""

from prefect import flow, get_run_logger

from tasks.data.builtin import BUILT_IN
from tasks.infra.errors import MlpipeError
from tasks.infra.runs import fail_clearly, filter_failed_task_lines
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
    project's outputs/ folder (or MLPIPE_PREDICTIONS_DIR)."""
    filter_failed_task_lines()
    try:
        summary = predict_file_task(dataset, input_path, output_path, alias)
    except MlpipeError as error:  # no champion, a missing file, a path outside outputs/: said once
        return fail_clearly(error)
    get_run_logger().info(
        "%s v%s labelled %d rows: %s", dataset, summary["version"], summary["rows"], summary["labels"]
    )
    return summary
