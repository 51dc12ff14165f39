"""Issue 3's acceptance runs: default `mlpipe run` on the real data sets (make test-slow)."""

import time

import mlflow
import pytest
import yaml
from conftest import SHARED_DATASETS

from flows.parameters import PipelineParams
from flows.training import training_pipeline
from tasks.settings import Settings

SPECS = {
    "digits": None,
    "sms_spam": {
        "modality": "text",
        "format": "tsv",
        "train": str(SHARED_DATASETS / "sms_spam.tsv"),
        "label_column": "Label",
        "text_column": "SMS",
    },
    "ecg200": {
        "modality": "sequence",
        "format": "ucr",
        "train": str(SHARED_DATASETS / "ecg200_train.txt"),
        "test": str(SHARED_DATASETS / "ecg200_test.txt"),
    },
}
BEST = {"digits": 0.99, "sms_spam": 0.985, "ecg200": 0.89}
EVERY_FAMILY = {"digits": 0.97, "sms_spam": 0.97, "ecg200": 0.80}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SPECS))
def test_default_run_beats_the_classical_baseline(name, prefect_api, workspace, tmp_path):
    dataset = name
    if SPECS[name]:
        dataset = str(tmp_path / f"{name}.yaml")
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump({"name": name, **SPECS[name]}))

    started = time.perf_counter()
    registration = training_pipeline(PipelineParams(dataset=dataset))
    minutes = (time.perf_counter() - started) / 60

    client = mlflow.MlflowClient(Settings(root=workspace).tracking_uri)
    accuracy = {
        family: client.get_run(run_id).data.metrics["test/accuracy"]
        for family, run_id in registration.candidate_run_ids.items()
    }
    best = registration.candidate_run_ids[registration.best_family]
    per_class = mlflow.artifacts.load_dict(f"runs:/{best}/evaluation/per_class_metrics.json")
    f1 = {label: round(scores["f1-score"], 4) for label, scores in per_class.items()}
    print(f"{name}: accuracy {accuracy}, F1 of {registration.best_family} {f1}, {minutes:.1f} min")  # noqa: T201
    assert max(accuracy.values()) >= BEST[name]
    assert min(accuracy.values()) >= EVERY_FAMILY[name]
    if name == "sms_spam":
        assert f1["spam"] >= 0.94  # TF-IDF + LinearSVC: 0.922
    assert minutes <= 10
