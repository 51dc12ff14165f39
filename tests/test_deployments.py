"""Deployments on a real Prefect server: `mlpipe serve` in the background, flow runs created
through the API as the UI's Run button creates them, and the cron schedule from params.yaml."""

import os
import re
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import yaml
from conftest import make_workspace
from prefect_runs import artifacts_of, prefect_client, stop_serving, wait_for_deployment, wait_for_flow_run

from tasks.infra.settings import CODE_ROOT, Settings

BIN = Path(sys.executable).parent
CRON = "15 4 * * 1"  # not the shipped default: the schedule must come from the project's params.yaml


@pytest.fixture(scope="module")
def served(prefect_api, tmp_path_factory):
    """`mlpipe serve` on a project of its own whose params.yaml schedules digits on CRON."""
    root = make_workspace(tmp_path_factory.mktemp("served") / "project")
    params = yaml.safe_load((CODE_ROOT / "params.yaml").read_text())
    params["schedules"] = {"digits": CRON}
    # No event triggers: other modules' digits events (test_monitoring's drift) must not start
    # runs of this deployment once its runner has gone. test_triggers.py has them.
    params["retraining"] = {"events": []}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    (root / "data").mkdir()
    spec = {"name": "tiny", "modality": "tabular", "format": "csv", "train": "tiny/train.csv"}
    (root / "data" / "tiny.yaml").write_text(yaml.safe_dump(spec))  # a data set the form offers
    log = (root / "serve.log").open("w")
    env = {**os.environ, "MLPIPE_ROOT": str(root)}
    process = subprocess.Popen(
        [str(BIN / "mlpipe"), "serve"], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root, start_new_session=True
    )
    try:
        wait_for_deployment("training_pipeline/train", process)
        yield root
    finally:
        stop_serving(process)
        log.close()


def test_serve_schedules_each_data_set_on_its_cron(served):
    deployment = wait_for_deployment("training_pipeline/train-digits")

    (schedule,) = deployment.schedules
    assert schedule.active and schedule.schedule.cron == CRON and schedule.schedule.timezone == "UTC"
    assert deployment.parameters == {"dataset": "digits"}
    dataset = deployment.parameter_openapi_schema["properties"]["dataset"]
    assert dataset["readOnly"] and dataset["enum"] == ["digits"]  # the deployment's own data set, fixed
    assert wait_for_deployment("batch_inference/predict").entrypoint == "flows.inference.batch_inference"
    tune = wait_for_deployment("tuning_pipeline/tune").parameter_openapi_schema["properties"]
    assert tune["trials"]["description"].endswith("(>= 1, <= 10000, empty: params.yaml's 20)")
    compress = wait_for_deployment("compression_pipeline/compress")
    assert compress.entrypoint == "flows.compression.compression_pipeline"
    form = compress.parameter_openapi_schema["properties"]
    assert form["margin"]["description"].endswith("(>= 0, < 1, empty: params.yaml's 0.005)")
    assert "Known data set" in str(form["dataset"]) and set(form) >= {"family", "temperature", "soft_weight"}
    pretrain = wait_for_deployment("pretraining_pipeline/pretrain")
    assert pretrain.entrypoint == "flows.pretraining.pretraining_pipeline"
    form = pretrain.parameter_openapi_schema["properties"]
    assert set(form) == {"dataset", "texts", "max_epochs", "timeout_minutes", "seed"}
    # pretraining's own params.yaml values, not those of `train` and `tuning` that share the names
    assert form["max_epochs"]["description"].endswith("(>= 1, <= 10000, empty: params.yaml's 10)")
    assert form["timeout_minutes"]["description"].endswith("(> 0, <= 10080, empty: params.yaml's 60.0)")


def test_the_form_is_typed_with_descriptions_and_bounds(served):
    schema = wait_for_deployment("training_pipeline/train").parameter_openapi_schema
    fields = schema["properties"]  # top-level flow parameters: `--param max_epochs=2` works

    assert set(fields) >= {"dataset", "models", "max_epochs", "batch_size", "learning_rate", "seed", "min_delta"}
    known, any_spec = fields["dataset"]["anyOf"]
    assert known["enum"] == ["digits", "tiny"] and any_spec["type"] == "string"  # built in, and data/tiny.yaml
    assert fields["models"]["items"]["enum"] == ["cnn", "rnn", "transformer", "pretrained", "baseline", "rocket"]
    assert {"backbone", "init_from"} <= set(fields)  # the pretrained family's and transfer's, in the form too
    assert {"minimum": 1, "maximum": 10_000, "type": "integer"} in fields["max_epochs"]["anyOf"]
    assert all(field.get("description") for field in fields.values())
    # Beside each field: its range, and what an empty field takes from params.yaml.
    assert (
        "(>= 1, <= 10000, empty: params.yaml's 40; families that set their own: " in fields["max_epochs"]["description"]
    )
    assert fields["seed"]["description"].endswith("(>= 0, empty: params.yaml's 42)")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"max_epochs": 0},
            "Validation failed for field 'max_epochs'. Failure reason: 0 is less than the minimum",
        ),
        ({"models": ["svm"]}, "Validation failed for field 'models[0]'. Failure reason: 'svm' is not one of"),
        ({"epochs": 3}, "Additional properties are not allowed ('epochs' was unexpected)"),
    ],
)
def test_invalid_form_values_are_rejected_not_replaced(served, params, message):
    from prefect.exceptions import PrefectHTTPStatusError

    deployment = wait_for_deployment("training_pipeline/train")
    with (
        prefect_client() as client,
        pytest.raises(PrefectHTTPStatusError, match=re.escape(message)),
    ):
        client.create_flow_run_from_deployment(deployment.id, parameters={"dataset": "digits", **params})


def test_a_run_from_the_ui_form_trains_and_registers(served):
    deployment = wait_for_deployment("training_pipeline/train")
    params = {"dataset": "digits", "models": ["cnn"], "max_epochs": 2, "seed": 3}
    with prefect_client() as client:
        flow_run = client.create_flow_run_from_deployment(deployment.id, parameters=params)

    flow_run = wait_for_flow_run(flow_run.id)

    assert flow_run.state.is_completed(), flow_run.state.message
    mlflow_client = mlflow.MlflowClient(Settings(root=served).tracking_uri)
    champion = mlflow_client.get_model_version_by_alias("digits", "champion")
    assert champion.tags["prefect_flow_run_id"] == str(flow_run.id)
    artifacts = {a.key: a for a in artifacts_of(flow_run.id) if a.key}
    assert {"validation-digits", "promotion-digits", "leaderboard-digits", "mlflow-model-digits"} <= set(artifacts)
    assert "[digits/cnn](" in artifacts["leaderboard-digits"].data  # the candidate, linked to its MLflow run
    assert "[digits/baseline](" in artifacts["leaderboard-digits"].data  # the baseline competes in every run
    assert artifacts["mlflow-model-digits"].data.endswith("/#/models/digits/versions/1?workflowType=machine_learning)")


def test_a_run_triggered_from_the_command_line_takes_each_setting_as_a_flow_parameter(served):
    """`prefect deployment run --param NAME=VALUE`, as the README shows it."""
    command = [str(BIN / "prefect"), "deployment", "run", "training_pipeline/train"]
    command += ["--param", "dataset=digits", "--param", 'models=["baseline"]', "--param", "seed=5"]
    started = subprocess.run(command, capture_output=True, text=True, timeout=120, env={**os.environ, "NO_COLOR": "1"})
    assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-2000:]
    flow_run_id = re.search(r"UUID: ([0-9a-f-]{36})", started.stdout).group(1)

    flow_run = wait_for_flow_run(flow_run_id)

    assert flow_run.state.is_completed(), flow_run.state.message
    assert flow_run.parameters == {"dataset": "digits", "models": ["baseline"], "seed": 5}
    assert re.fullmatch(r"digits-baseline-\d{4}-\d\d-\d\dT\d{4}", flow_run.name)
