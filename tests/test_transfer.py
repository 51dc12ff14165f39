"""`--init-from`: a network starts from another data set's registered weights, with a new head."""

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from conftest import make_workspace

from tasks.infra.errors import MlpipeError
from tasks.infra.settings import CODE_ROOT

MLPIPE = str(Path(sys.executable).with_name("mlpipe"))


def test_a_network_starts_from_the_versions_body_with_a_new_head(own_registry, small_datasets, tmp_path):
    from models.networks import build_network
    from tasks.training.initial import load_init
    from tasks.training.transfer import from_version, resolve_source
    from tasks.types import TrainConfig

    settings, _ = own_registry
    init = resolve_source("models:/digits/2", "image", ["cnn"], settings)
    assert init["version"] == "2" and init["run_id"]
    digits_small = small_datasets["image"]
    config = TrainConfig(family="cnn", max_epochs=1, batch_size=32, patience=1, seed=0, init=init)

    start = from_version(digits_small, config, tmp_path, settings)
    network = build_network("image", "cnn", **start.network_kwargs)
    load_init(network, start.init_weights)

    source = build_network("image", "cnn", **_member(settings, "2")["network_kwargs"])
    source.load_state_dict(torch.load(next((settings.outputs_dir / "sources").glob("digits-v2-*/**/member_0.pt"))))
    for name, value in source.state_dict().items():
        if not name.startswith("head."):
            torch.testing.assert_close(network.state_dict()[name], value, msg=name)
    assert start.network_kwargs["channels"] == 16  # the source's architecture, not params.yaml's

    wider = dataclasses.replace(config, network={"channels": 64})
    with pytest.raises(MlpipeError, match=r"the cnn's channels is 16 there and 64 here"):
        from_version(digits_small, wider, tmp_path / "wider", settings)


def _member(settings, version: str) -> dict:
    import json

    spec = next((settings.outputs_dir / "sources").glob(f"digits-v{version}-*/**/spec.json"))
    return json.loads(spec.read_text())["members"][0]


def _digits_task(root: Path, name: str, frame: pd.DataFrame) -> str:
    frame.to_csv(root / f"{name}.csv", index=False)
    spec = {"name": name, "modality": "image", "format": "csv", "train": f"{name}.csv", "label_column": "label"}
    spec |= {"image_shape": [1, 8, 8], "pixel_scale": 16, "test_fraction": 0.25}
    (root / f"{name}.yaml").write_text(yaml.safe_dump(spec))
    return str(root / f"{name}.yaml")


@pytest.mark.slow
def test_transfer_from_a_related_task_beats_scratch_on_few_rows(prefect_api, tmp_path):
    """Digits 0-4 (900 rows) teach strokes that digits 5-9 share: a CNN started from them beats one
    trained from scratch on 16 rows a class, out of fold over the non-test rows (cross-validation)."""
    from sklearn.datasets import load_digits

    root = make_workspace(tmp_path / "project")
    digits = load_digits(as_frame=True).frame.rename(columns={"target": "label"})
    source = _digits_task(root, "lower_digits", digits[digits.label < 5])
    target = _digits_task(root, "upper_digits", digits[digits.label >= 5].groupby("label").head(16))
    params = yaml.safe_load((CODE_ROOT / "params.yaml").read_text())
    params["split"]["val_fraction"] = 0.5
    params["selection"] = {"baseline": False, "ensemble": False}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "MLPIPE_ROOT": str(root), "PREFECT_API_URL": prefect_api}

    def run(dataset: str, *extra: str) -> None:
        args = [MLPIPE, "run", "--dataset", dataset, "--models", "cnn", "--max-epochs", "15", *extra]
        done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=root, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]

    run(source)
    run(target)
    run(target, "--init-from", "models:/lower_digits@champion")

    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{root}/mlflow/mlflow.db")
    runs = {
        run.data.tags["init"]: run
        for run in client.search_runs(
            [client.get_experiment_by_name("upper_digits").experiment_id], "tags.`mlpipe.role` = 'candidate'"
        )
    }
    carried, scratch = runs["models:/lower_digits/1"], runs["scratch"]
    assert carried.data.metrics["val/accuracy"] > scratch.data.metrics["val/accuracy"] + 0.1
    assert carried.data.tags["init_from"] == "models:/lower_digits@champion"
    assert carried.data.tags["init_from.version"] == "1"
    version = client.get_model_version("upper_digits", "2")
    assert version.tags["init"] == "models:/lower_digits/1" and version.tags["init_from.run_id"]
