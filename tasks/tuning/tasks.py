"""The tuning stage as Prefect tasks."""

from dataclasses import replace

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.infra.errors import MlpipeError
from tasks.infra.params import ProjectParams
from tasks.infra.runs import artifact_key, run_logger, run_title
from tasks.infra.settings import get_settings
from tasks.infra.tuned import Tuned, write_tuned
from tasks.types import Dataset, Split


# Not cached: the study in its storage is the memory; a rerun with the budget spent runs no trial.
@task(name="tune_family", cache_policy=NO_CACHE)
def tune_family(
    dataset: Dataset,
    split: Split,
    project: ProjectParams,
    family: str,
    seed: int,
    trials: int,
    timeout_minutes: float | None,
    workers: int,
    max_epochs: int | None = None,
) -> dict:
    """A family's study: trials until its budget is spent, then its verdict in params/<name>.yaml: the
    best trial's settings, or none when they did not beat the defaults on the check rows."""
    from tasks.tuning.study import TuneJob

    settings = get_settings()
    job = TuneJob(
        dataset=dataset,
        split=split,
        project=project,
        family=family,
        seed=seed,
        trials=trials,
        timeout_seconds=timeout_minutes * 60 if timeout_minutes else None,
        root=settings.root,
        experiment_id="",
        parent_run_id="",
        max_epochs=max_epochs,
        folds=_folds(dataset, split, project, seed),
    )
    job.rows()  # too few validation rows to halve: one error here, before any run is opened
    job = _with_tuning_run(job, settings)
    folder = settings.outputs_dir / dataset.name / "tuning" / job.study_name
    try:
        summary = _run_study(job, workers, folder, settings)
    except BaseException:
        import mlflow

        mlflow.MlflowClient().set_terminated(job.parent_run_id, status="FAILED")  # not left RUNNING in the UI
        raise
    _log_summary(dataset.name, family, summary)
    return summary


def _with_tuning_run(job, settings):
    """The job with its MLflow parent run, opened now."""
    from tasks.tuning.tracking import start_tuning_run

    name = run_title(f"{job.dataset.name}-tune", [job.family], None)
    tags = {"dataset": job.dataset.name, "family": job.family}
    experiment_id, parent_id = start_tuning_run(settings, job.dataset.name, name, tags)
    return replace(job, experiment_id=experiment_id, parent_run_id=parent_id)


def _run_study(job, workers: int, folder, settings) -> dict:
    """The study's trials by `workers` processes until its budget is spent; its verdict written to
    params/<name>.yaml, its plots and summary on its MLflow run."""
    from tasks.tuning.report import plot_study, summarize
    from tasks.tuning.study import open_study
    from tasks.tuning.study_workers import run_workers
    from tasks.tuning.tracking import finish_tuning_run

    open_study(job)  # created here, once: workers starting together would race to create it
    run_workers(job, workers, folder)
    study = open_study(job, enqueue=False)
    summary = summarize(study, job) | {"mlflow_run_id": job.parent_run_id, "experiment_id": job.experiment_id}
    if summary["value"] is None and summary["counts"]["FAIL"]:
        raise MlpipeError(f"tuning {job.family} on {job.dataset.name}: every trial failed: {_first_failure(study)}")
    if summary["value"] is not None:
        tuned = _tuned(summary, job.study_name)
        summary["written_to"] = str(write_tuned(settings, job.dataset.name, job.family, tuned))
    summary["plots"] = [path.stem for path in plot_study(study, folder / "plots")]
    finish_tuning_run(job.parent_run_id, summary, [folder / "plots" / f"{name}.png" for name in summary["plots"]])
    return summary


def _tuned(summary: dict, study: str) -> Tuned:
    """The study's verdict: the best trial's settings (4 significant digits) when they beat the
    defaults on the check rows, else none."""
    best = {k: float(f"{v:.4g}") if isinstance(v, float) else v for k, v in summary["settings"].items()}
    return Tuned(
        settings=best if summary["kept"] == "tuned" else {},
        study=study,
        trial=summary["best_trial"],
        kept=summary["kept"],
        why=summary["why"],
        val_accuracy=round(summary["value"], 6),
        check_accuracy=summary["check"]["tuned"],
        defaults_check_accuracy=summary["check"]["defaults"],
        trials=summary["trials_counted"],
    )


def _log_summary(dataset: str, family: str, summary: dict) -> None:
    run_logger("mlpipe.tuning").info(
        "%s %s: best val/accuracy %s on the search rows (trial %s), %s; kept: %s (%s)",
        dataset,
        family,
        summary["value"],
        summary["best_trial"],
        summary["counts"],
        summary["kept"],
        summary["why"],
    )


def _first_failure(study) -> str:
    """Why a trial failed, from its MLflow run's note (the study keeps only the state)."""
    import mlflow

    runs = mlflow.search_runs(
        filter_string=f"tags.`optuna.study` = '{study.study_name}' and tags.`optuna.state` = 'FAIL'",
        search_all_experiments=True,
        output_format="list",
        max_results=1,
    )
    return runs[0].data.tags.get("optuna.note", "no note") if runs else "see the trials' logs"


@task(name="publish_tuning", cache_policy=NO_CACHE)
def publish_tuning(dataset: str, summaries: list[dict]) -> None:
    from prefect.artifacts import create_markdown_artifact

    from tasks.registry.links import artifact_url, run_url
    from tasks.registry.store import mlflow_ui_url
    from tasks.tuning.report import tuning_markdown

    ui = mlflow_ui_url(get_settings())
    links = {s["family"]: run_url(ui, s["experiment_id"], s["mlflow_run_id"]) for s in summaries}
    plots = {
        s["family"]: {
            name: artifact_url(ui, s["experiment_id"], s["mlflow_run_id"], f"tuning/{name}.png") for name in s["plots"]
        }
        for s in summaries
    }
    create_markdown_artifact(
        key=f"tuning-{artifact_key(dataset)}",
        markdown=tuning_markdown(dataset, summaries, links, plots),
        description=f"Tuning of {dataset}: each family's best trial, and whether it beat params.yaml's settings",
    )


def _folds(dataset, split, project, seed: int) -> list | None:
    """The folds a run of this data set chooses on, if it chooses by cross-validation."""
    from tasks.evaluation.cross_validation import make_folds, uses_cv

    if not uses_cv(split, project.selection.cv_below):
        return None
    return make_folds(dataset, split, project.selection.folds, seed).splits
