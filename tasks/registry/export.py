"""A registered version as files DVC can version: the model, its metrics and its plots.

`mlpipe run --out DIR` (the dvc.yaml stages) writes
  model/                     the MLflow pyfunc model (servable: `mlflow models serve -m DIR/model`)
  metrics.json               test metrics of the version and of every candidate of its run
  learning_curves/<family>.csv  per-epoch losses and accuracies, for `dvc plots`
  confusion_matrix.png       of the registered candidate
Everything is read back from MLflow, so a rerun that reused a version exports the same files.
"""

import json
import shutil
from pathlib import Path
from tempfile import TemporaryDirectory

from tasks.infra.files import write_atomic
from tasks.infra.settings import Settings
from tasks.registry.run_logging import curve_name

CURVES = ("train/loss", "val/loss", "train/accuracy", "val/accuracy", "val/f1_macro")  # as training logs them


def export_version(name: str, version: str, out_dir: Path, settings: Settings) -> Path:
    import mlflow

    from tasks.registry.store import connect

    experiment_id = connect(settings, name, create=False)
    client = mlflow.MlflowClient()
    registered = client.get_model_version(name, version)
    registered_run = client.get_run(registered.run_id)
    parent_id = registered_run.data.tags.get("mlflow.parentRunId", registered.run_id)
    candidates = client.search_runs([experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}'")

    out_dir.mkdir(parents=True, exist_ok=True)
    with TemporaryDirectory(dir=out_dir) as tmp:
        downloaded = mlflow.artifacts.download_artifacts(f"models:/{name}/{version}", dst_path=tmp)
        shutil.rmtree(out_dir / "model", ignore_errors=True)
        shutil.move(downloaded, out_dir / "model")
        matrix = client.download_artifacts(registered.run_id, "evaluation/confusion_matrix.png", tmp)
        shutil.copyfile(matrix, out_dir / "confusion_matrix.png")

    def scores(run) -> dict:
        return {k.replace("/", "_"): run.data.metrics[k] for k in ("test/accuracy", "test/f1_macro")}

    metrics = {
        "registered_version": int(version),
        "family": registered.tags.get("family"),
        **scores(registered_run),
        "candidates": {run.data.tags.get("family", run.info.run_id): scores(run) for run in candidates},
    }
    write_atomic(out_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")

    curves_dir = out_dir / "learning_curves"
    shutil.rmtree(curves_dir, ignore_errors=True)
    curves_dir.mkdir()
    for run in candidates:
        rows: dict[int, dict] = {}
        for metric in CURVES:
            # Runs logged before the curves were named epoch/* have them under training's names.
            history = client.get_metric_history(run.info.run_id, curve_name(metric))
            for point in history or client.get_metric_history(run.info.run_id, metric):
                rows.setdefault(point.step, {"epoch": point.step})[metric.replace("/", "_")] = point.value
        columns = ["epoch", *(m.replace("/", "_") for m in CURVES)]
        lines = [",".join(columns)] + [
            ",".join(str(row.get(c, "")) for c in columns) for _, row in sorted(rows.items())
        ]
        (curves_dir / f"{run.data.tags.get('family', run.info.run_id)}.csv").write_text("\n".join(lines) + "\n")
    return out_dir
