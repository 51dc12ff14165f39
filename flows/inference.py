"""Batch inference as a Prefect flow, so it can be scheduled and triggered like training."""

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.inference import confined_output, predict_file
from tasks.settings import get_settings


@task(name="predict_file", cache_policy=NO_CACHE)
def predict_file_task(dataset: str, input_path: str, output_path: str) -> dict:
    settings = get_settings()
    output = confined_output(output_path, settings)  # before reading anything: the caller may be anyone
    return predict_file(dataset, settings.root / input_path, output, settings)


@flow(name="batch_inference")
def batch_inference(
    dataset: str = "digits", input_path: str = "data/new.csv", output_path: str = "outputs/predictions.csv"
) -> dict:
    """Label every row of input_path with the data set's @champion and write them to output_path,
    a path under the project's outputs/ folder (or MLPIPE_PREDICTIONS_DIR)."""
    summary = predict_file_task(dataset, input_path, output_path)
    get_run_logger().info(
        "%s v%s labelled %d rows: %s", dataset, summary["version"], summary["rows"], summary["labels"]
    )
    return summary
