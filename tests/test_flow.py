"""The whole training flow under Prefect's test harness, with real GX, Lightning, MLflow and DVC."""

import asyncio
import uuid

import pytest
import yaml

import mlflow
from flows.parameters import PipelineParams
from flows.training import training_pipeline
from tasks.errors import ValidationFailed
from tasks.settings import Settings


def _flow_run(flow_run_id: str):
    from prefect.client.orchestration import get_client

    async def read():
        async with get_client() as client:
            return await client.read_flow_run(uuid.UUID(flow_run_id))

    return asyncio.run(read())


def test_the_pipeline_validates_trains_evaluates_and_registers(prefect_api, workspace):
    registration = training_pipeline(PipelineParams(dataset="digits", models=["cnn"], max_epochs=2, seed=3))

    settings = Settings(root=workspace)
    client = mlflow.MlflowClient(settings.tracking_uri)
    version = client.get_model_version_by_alias("digits", "champion")
    assert registration.version == str(version.version) == "1"
    assert registration.promoted and registration.best_family == "cnn"

    run = client.get_run(registration.candidate_run_ids["cnn"])
    assert 0.5 < run.data.metrics["test/accuracy"] <= 1.0
    assert "test/f1_macro" in run.data.metrics
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val/loss")] == [0, 1]
    assert run.data.params["max_epochs"] == "2" and run.data.params["seed"] == "3"

    data_hash = yaml.safe_load((workspace / "data" / "digits.dvc").read_text())["outs"][0]["md5"]
    assert version.tags["data_hash"] == data_hash.removesuffix(".dir")
    assert version.tags["validation"].startswith("passed: ")
    report_path = version.tags["validation"].removeprefix("passed: ")
    assert report_path.startswith(str(workspace / "outputs" / "digits"))

    flow_run = _flow_run(version.tags["prefect_flow_run_id"])
    assert flow_run.state.is_completed()
    assert flow_run.parameters["params"]["max_epochs"] == 2


def test_broken_data_stops_the_flow_before_training(prefect_api, workspace, digits):
    table = workspace / "data" / "digits" / "digits.parquet"
    table.parent.mkdir(parents=True)
    broken = digits.frame.copy()
    broken.loc[5, "pixel_10"] = 99
    broken.to_parquet(table, index=False)

    with pytest.raises(ValidationFailed, match=r"expect_column_values_to_be_between\(pixel_10\) 1 unexpected"):
        training_pipeline(PipelineParams(dataset="digits", max_epochs=1))

    assert not list((workspace / "outputs" / "digits").glob("*/cnn"))  # nothing trained
    assert not (workspace / "mlflow" / "mlflow.db").exists()  # nothing logged or registered
