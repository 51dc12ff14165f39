"""Issue 13's acceptance runs: default `mlpipe run` on the ten shared data sets (make test-slow).

The specs are bench/datasets/<name>.yaml and the targets bench/datasets/targets.yaml, which
bench/quality.py reads too; each run takes minutes on two cores.
"""

import time
from pathlib import Path

import mlflow
import pytest
import yaml

from flows.training import training_pipeline
from tasks.infra.settings import CODE_ROOT, Settings

BENCH_DATASETS = Path(__file__).resolve().parents[1] / "bench" / "datasets"
TARGETS = yaml.safe_load((BENCH_DATASETS / "targets.yaml").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("name", list(TARGETS["accuracy"]))
def test_default_run_beats_the_classical_baseline(name, prefect_api, workspace):
    dataset = name if name == "digits" else str(BENCH_DATASETS / f"{name}.yaml")
    if checks := TARGETS.get("checks", {}).get(name):  # limits the shared file needs (targets.yaml)
        params = yaml.safe_load((CODE_ROOT / "params.yaml").read_text())
        params["validation"]["checks"] |= checks
        (workspace / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    started = time.perf_counter()
    registration = training_pipeline(dataset=dataset)
    minutes = (time.perf_counter() - started) / 60

    client = mlflow.MlflowClient(Settings(root=workspace).tracking_uri)
    metrics = {family: client.get_run(run_id).data.metrics for family, run_id in registration.candidate_run_ids.items()}
    accuracy = {family: m["test/accuracy"] for family, m in metrics.items()}
    chosen = registration.best_family
    per_class = mlflow.artifacts.load_dict(
        f"runs:/{registration.candidate_run_ids[chosen]}/evaluation/per_class_metrics.json"
    )
    f1 = {label: round(scores["f1-score"], 4) for label, scores in per_class.items()}
    print(f"{name}: test accuracy {accuracy}, chosen {chosen}, F1 {f1}, {minutes:.1f} min")  # noqa: T201

    # The choice was made on validation figures: the chosen candidate has the best of them, or is
    # the ensemble within one standard error of the best (tasks/evaluation/selection.py).
    best = max(m["val/accuracy"] for m in metrics.values())
    assert metrics[chosen]["val/accuracy"] == best or chosen == "ensemble"
    networks = {family: a for family, a in accuracy.items() if family not in ("baseline", "rocket", "ensemble")}
    assert max(networks.values()) >= accuracy["baseline"]
    assert accuracy[chosen] >= TARGETS["accuracy"][name]
    for label, least in TARGETS["f1"].get(name, {}).items():
        assert f1[label] >= least
    assert minutes <= TARGETS["minutes"]
