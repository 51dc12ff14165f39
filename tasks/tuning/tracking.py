"""A tuning run in MLflow: one parent run per study (a data set's family), and a nested run per trial with the
metric names of the pipeline's candidate runs (`val/accuracy`, `epoch/val_loss`, ...), so MLflow's
compare view shows the search beside the candidates it chose between."""

import json
from pathlib import Path

from tasks.registry.run_logging import created_run, curve_name, rounded
from tasks.registry.store import connect


def start_tuning_run(settings, dataset: str, name: str, tags: dict) -> tuple[str, str]:
    """(experiment id, run id) of a new tuning parent run in the data set's experiment."""
    experiment_id = connect(settings, dataset)
    return experiment_id, created_run(experiment_id, name, {**tags, "mlpipe.role": "tuning"}, None)


def log_trial(experiment_id: str, parent_id: str, trial, family: str, outcome: dict) -> str:
    """A nested run for a finished, pruned or failed trial: its settings, its validation figures,
    its per-epoch curves as far as it went, and the trial's state."""
    import mlflow

    tags = {
        "mlflow.parentRunId": parent_id,
        "mlpipe.role": "trial",
        "family": family,
        "optuna.study": trial.study.study_name,
        "optuna.trial": str(trial.number),
        "optuna.state": outcome["state"],
        **({"tuning.defaults": "params.yaml's settings"} if outcome.get("defaults") else {}),
    }
    name = f"{outcome['dataset']}/{family}/trial-{trial.number}"
    run_id = created_run(experiment_id, name, tags, outcome.get("started_at"))
    client = mlflow.MlflowClient()
    with mlflow.start_run(run_id=run_id, nested=True):
        mlflow.log_params({**outcome.get("run_params", {}), **{f"tuned.{k}": v for k, v in trial.params.items()}})
        for epoch in outcome.get("history", []):
            mlflow.log_metrics(
                rounded({curve_name(k): v for k, v in epoch.items() if k != "epoch"}), step=epoch["epoch"]
            )
        if outcome.get("scores"):
            mlflow.log_metrics(rounded(outcome["scores"]))
        if outcome.get("note"):
            mlflow.set_tag("optuna.note", outcome["note"][:500])
    status = {"COMPLETE": "FINISHED", "PRUNED": "KILLED"}.get(outcome["state"], "FAILED")
    finished = outcome.get("finished_at")
    client.set_terminated(run_id, status=status, end_time=int(finished * 1000) if finished else None)
    return run_id


def finish_tuning_run(run_id: str, summary: dict, plots: list[Path]) -> None:
    """The parent run's summary: the best trial's figure under the trials' name, its settings
    (kept or not: the `tuning.kept` tag says), its check figure, how many trials finished and were
    pruned, and Optuna's plots."""
    import mlflow

    with mlflow.start_run(run_id=run_id):
        if summary["value"] is not None:
            mlflow.log_metric("val/accuracy", rounded({"v": summary["value"]})["v"])
        mlflow.log_params({f"best.{k}": v for k, v in summary["settings"].items()})
        if summary["check"]["tuned"] is not None:
            mlflow.log_metric("check/accuracy", rounded({"v": summary["check"]["tuned"]})["v"])
        mlflow.set_tags(
            {
                "optuna.best_trial": str(summary["best_trial"]),
                "optuna.trials": json.dumps(summary["counts"]),
                "tuning.kept": f"{summary['kept']}: {summary['why']}",
            }
        )
        mlflow.log_dict(summary, "tuning/summary.json")
        for path in plots:
            mlflow.log_artifact(str(path), artifact_path="tuning")
