"""Caching: an unchanged rerun trains nothing; a change to data, parameters or code invalidates
exactly the stages that depend on it."""

import asyncio
import shutil

import mlflow
import pandas as pd
import yaml
from payloads import Payload

from flows.training import training_pipeline
from tasks.infra.fingerprints import code_fingerprint
from tasks.infra.settings import CODE_ROOT, Settings
from tasks.training.caching import TRAINING_CODE
from tasks.validation.caching import VALIDATION_CODE


def _task_states(state) -> dict[str, list[str]]:
    """Task name -> the state names of its runs in the flow run that ended in `state`."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async def read():
        async with get_client() as client:
            return await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
            )

    states: dict[str, list[str]] = {}
    for run in sorted(asyncio.run(read()), key=lambda r: r.expected_start_time):
        states.setdefault(run.name.rsplit("-", 1)[0], []).append(run.state.name)
    return states


def _artifact_keys(flow_run_id) -> list[str]:
    from prefect_runs import artifacts_of

    return [a.key for a in artifacts_of(flow_run_id)]


def _run(**params):
    state = training_pipeline(dataset="digits", **params, return_state=True)
    return state.result(), _task_states(state)


def test_a_rerun_with_nothing_changed_trains_nothing_and_reuses_the_version(prefect_api, workspace):
    first, states = _run(models=["cnn"], max_epochs=2, seed=3)
    assert states["train_model"] == ["Completed"] and states["validate_dataset"] == ["Completed"]
    # The registry's stages, one task each in the Prefect UI.
    for stage in ("log_candidates", "register_chosen", "promotion_gate", "publish_reports"):
        assert states[stage] == ["Completed"], stage

    state = training_pipeline(dataset="digits", models=["cnn"], max_epochs=2, seed=3, return_state=True)
    again, states = state.result(), _task_states(state)

    assert states["train_model"] == ["Cached"] and states["validate_dataset"] == ["Cached"]
    # The cached verdict is shown all the same: this run's page has its validation artifact.
    assert states["publish_validation"] == ["Completed"]
    assert "validation-digits" in _artifact_keys(state.state_details.flow_run_id)
    assert "register_chosen" not in states and "promotion_gate" not in states  # nothing to register or decide
    assert again.reused and again.version == first.version == "1"
    assert again.reason.startswith("unchanged: data, parameters and code are those of v1")
    client = mlflow.MlflowClient(Settings(root=workspace).tracking_uri)
    experiment = client.get_experiment_by_name("digits")
    # The first run's parent and its two candidates (the CNN and the baseline), nothing more.
    assert len(client.search_runs([experiment.experiment_id])) == 3
    assert [v.version for v in client.search_model_versions("name='digits'")] == [1]


def test_a_change_retrains_exactly_what_depends_on_it(prefect_api, workspace):
    _, states = _run(models=["cnn", "rnn"], max_epochs=1, seed=3)
    assert states["train_model"] == ["Completed", "Completed"]

    # The first run's reports are gone, as on another machine that reads the cache from object storage.
    for report in (workspace / "outputs" / "digits").glob("*/validation.json"):
        shutil.rmtree(report.parent)
    # One family's hyper-parameter: only that family trains again; the data's checks stay cached.
    params = yaml.safe_load((CODE_ROOT / "params.yaml").read_text())
    params["families"]["image"]["rnn"]["hidden"] = 32
    (workspace / "params.yaml").write_text(yaml.safe_dump(params))
    changed, states = _run(models=["cnn", "rnn"], max_epochs=1, seed=3)
    assert states["validate_dataset"] == ["Cached"]
    assert states["train_model"] == ["Cached", "Completed"]
    assert not changed.reused and changed.version == "2"
    # The cached verdict wrote its reports again, in this run's folder, and MLflow has them.
    client = mlflow.MlflowClient(Settings(root=workspace).tracking_uri)
    run_id = client.get_model_version("digits", "2").run_id
    parent = client.get_run(client.get_run(run_id).data.tags["mlflow.parentRunId"])
    logged = {a.path for a in client.list_artifacts(parent.info.run_id, "validation")}
    assert logged == {"validation/validation.json", "validation/data_docs.html"}

    # New data: everything runs again, and the version records the new data hash.
    table = workspace / "data" / "digits" / "digits.parquet"
    frame = pd.read_parquet(table)
    frame.drop(index=frame.groupby("label").head(1).index).to_parquet(table, index=False)
    new_data, states = _run(models=["cnn", "rnn"], max_epochs=1, seed=3)
    assert states["validate_dataset"] == ["Completed"]
    assert states["train_model"] == ["Completed", "Completed"]
    hashes = {v: client.get_model_version("digits", v).tags["data_hash"] for v in ("2", new_data.version)}
    assert new_data.version == "3" and hashes["2"] != hashes["3"]


def test_code_changes_invalidate_the_stage_whose_code_changed(tmp_path):
    for folder in ("models", "tasks"):
        shutil.copytree(CODE_ROOT / folder, tmp_path / folder)
    before = {name: code_fingerprint(paths, tmp_path) for name, paths in (("v", VALIDATION_CODE), ("t", TRAINING_CODE))}

    def edit(relative: str, line: str) -> None:
        path = tmp_path / relative
        assert path.is_file(), f"{relative} is gone: edit a file the stage's code has"  # an edit, not a new file
        with path.open("a") as source:
            source.write(f"\n# {line}\n")

    edit("models/cnn.py", "a changed network")
    after = {name: code_fingerprint(paths, tmp_path) for name, paths in (("v", VALIDATION_CODE), ("t", TRAINING_CODE))}
    assert after["t"] != before["t"] and after["v"] == before["v"]

    edit("tasks/validation/row_checks.py", "a changed check")
    assert code_fingerprint(VALIDATION_CODE, tmp_path) != after["v"]
    assert code_fingerprint(TRAINING_CODE, tmp_path) == after["t"]


def test_editing_a_spec_invalidates_validation_and_training_with_the_same_files(small_datasets, tmp_path):
    from tasks.data.loading import load_spec
    from tasks.data.splitting import split
    from tasks.infra.params import ValidationParams
    from tasks.training.caching import training_key
    from tasks.types import BaselineConfig
    from tasks.validation.caching import validation_key

    image = small_datasets["image"]
    spec = yaml.safe_load(image.spec_path.read_text())
    keys = []
    for pixel_scale in (16, 255):  # the same parquet file, read with another scaling
        path = tmp_path / f"scale{pixel_scale}" / "digits_small.yaml"
        path.parent.mkdir()
        shutil.copy(image.spec_path.parent / "digits.parquet", path.parent / "digits.parquet")
        path.write_text(yaml.safe_dump({**spec, "pixel_scale": pixel_scale}))
        dataset = load_spec(path)
        parts = split(dataset.frame["label"].to_numpy(), 0.2, 0.1, 0, 0)
        suite = tmp_path / "no-suite.json"
        keys.append(
            (
                training_key(dataset, parts, BaselineConfig(seed=0)),
                validation_key(dataset, suite, ValidationParams(), None, False),
            )
        )
        assert dataset.data_hash == image.data_hash  # the data version alone cannot tell them apart
    (train_16, validate_16), (train_255, validate_255) = keys
    assert train_16 != train_255 and validate_16 != validate_255


def test_a_crafted_pickle_in_the_cache_is_never_read_and_the_task_runs_again(prefect_api, workspace, tmp_path):
    """Prefect unpickles whatever a result file says; each file mlpipe writes is signed, so an
    entry put in cache/ by someone without the secret is a miss: never unpickled, said, redone."""
    import base64
    import json

    import cloudpickle

    _run(models=["baseline"], seed=3)
    entries = [p for p in (workspace / "outputs" / "cache").rglob("*") if p.is_file()]
    assert entries and all(p.read_bytes().startswith(b"mlpipe-signed-v1\n") for p in entries)
    marker = tmp_path / "payload-ran"
    for entry in entries:  # what Prefect reads: a record naming its serializer, and the pickle
        record = json.loads(entry.read_bytes().split(b"\n", 2)[2])
        record["metadata"]["serializer"] = {"type": "pickle", "picklelib": "cloudpickle"}
        record["result"] = base64.encodebytes(cloudpickle.dumps(Payload(marker))).decode()
        entry.write_text(json.dumps(record))

    again, states = _run(models=["baseline"], seed=3)

    assert not marker.exists()
    assert states["train_baseline"] == ["Completed"] and states["validate_dataset"] == ["Completed"]  # run again
    assert all(p.read_bytes().startswith(b"mlpipe-signed-v1\n") for p in entries)  # signed anew
