"""MLflow runs of a pipeline run: a parent run with the data, validation and choice, and a child
run per candidate with its settings, learning curves and test figures.

Metric names say which rows a figure comes from, `<rows>/<measure>`: `val/accuracy`, `val/loss`
and `test/accuracy` are the kept model's (the weights training kept, as the choice and the
registry see them), `train/seconds` its training time; the parent run has the chosen candidate's.
The per-epoch learning curves are `epoch/<rows>_<measure>`, one point per epoch. Values are
rounded to 6 significant digits: the float noise beyond says nothing."""

from dataclasses import asdict

from tasks.evaluation.scoring import Evaluation
from tasks.evaluation.selection import Choice
from tasks.types import Candidate, Dataset, Split

FIGURES = 6  # significant digits of a logged metric
VERSION_LINEAGE = ("data_hash", "git_sha", "prefect_flow_run_id")
SUMMARY_METRICS = ("val/accuracy", "test/accuracy", "test/f1_macro", "train/seconds")


def curve_name(name: str) -> str:
    """The MLflow name of a learning curve that training logs as `val/loss`: `epoch/val_loss`."""
    return "epoch/" + name.replace("/", "_")


def rounded(metrics: dict[str, float]) -> dict[str, float]:
    return {name: float(f"{value:.{FIGURES}g}") for name, value in metrics.items()}


def log_pipeline_run(experiment_id: str, dataset, split, report, candidates, choice: Choice, tags: dict, key: str):
    """The parent run and a child run per candidate: (parent run id, family -> run id, the tags
    of the version to register from the chosen one)."""
    import mlflow

    validation = f"{report.outcome}: {report.report_path}"
    run_name = tags.get("prefect_flow_run_name")  # the flow run's: the same name in both UIs
    # The pipeline's run begins with its first candidate's training, not when logging begins.
    began = min((m.started_at for m, _ in candidates if m.started_at), default=None)
    parent_id = created_run(experiment_id, run_name, {**tags, "mlpipe.role": "pipeline"}, began)
    with mlflow.start_run(run_id=parent_id) as parent:
        mlflow.set_tags({"validation": validation, "validation.warn_only": str(report.warn_only).lower()})
        mlflow.log_params(
            {
                "split_seed": split.seeds["split"],
                "seed": split.seeds["seed"],
                "split.test_fraction": split.fractions.get("test"),
                "split.val_fraction": split.fractions.get("val"),
                "families": ",".join(m.family for m, _ in candidates),
                **{f"dataset.{k}": v for k, v in dataset_params(dataset, split).items()},
            }
        )
        for path in (report.report_path, report.docs_path):
            if path is not None and path.exists():
                mlflow.log_artifact(str(path), artifact_path="validation")
        mlflow.log_input(_dataset_input(dataset), context="training")  # MLflow's dataset panel
        if dataset.spec_path is not None:  # with the data hash, what `mlpipe reproduce` needs
            mlflow.log_text(dataset.spec_path.read_text(), "dataset/spec.yaml")
        run_ids = {}
        for model, evaluation in candidates:
            run_ids[model.family] = log_candidate(
                model, evaluation, choice, {**tags, "validation": validation}, experiment_id
            )

        best_model, best_eval = next(c for c in candidates if c[0].family == choice.family)
        # The chosen candidate's figures, under the names its own run has: one column in the runs table.
        mlflow.log_metrics(rounded({**choice.scores[choice.family], **best_eval.metrics}))
        mlflow.set_tags(
            {
                "best_family": best_model.family,
                "selected_family": best_model.family,
                "selected_by": choice.selected_by,
                "selection.notes": " | ".join(choice.notes) or "none",
            }
        )
        mlflow.log_dict(choice.as_dict(), "selection.json")
        # A version's tags are what versions are found by; the rest of the lineage is on its run.
        version_tags = {
            **{name: tags[name] for name in VERSION_LINEAGE if name in tags},
            "family": best_model.family,
            "validation": validation,
            "candidates_key": key,
        }
        version_tags |= start_tags(best_model)
        if tuned := tags.get(f"tuning.{best_model.family}"):
            version_tags["tuning"] = tuned  # the study and trial its settings came from, or that the defaults stayed
    return parent.info.run_id, run_ids, version_tags


def log_candidate(model: Candidate, evaluation: Evaluation, choice: Choice, tags: dict, experiment_id: str) -> str:
    """A candidate's child run: its params, curves, figures and tags in one batch (one transaction
    of the store, not one per epoch), then its files."""
    import time

    import mlflow
    from mlflow.entities import Metric, Param, RunTag

    flags = choice.flags(model.family)
    name = f"{tags.get('dataset', '')}/{model.family}".lstrip("/")
    parent = {"mlflow.parentRunId": mlflow.active_run().info.run_id}
    candidate_tags = {**tags, **parent, "mlpipe.role": "candidate", "family": model.family}
    run_id = created_run(experiment_id, name, candidate_tags, model.started_at or None)
    now = int(time.time() * 1000)
    metrics = [
        Metric(curve_name(k), v, now, epoch["epoch"])
        for epoch in model.history
        for k, v in rounded({k: v for k, v in epoch.items() if k != "epoch"}).items()
    ]
    figures = {**choice.scores[model.family], **evaluation.metrics, "train/seconds": model.fit_seconds}
    metrics += [Metric(k, v, now, 0) for k, v in rounded(figures).items()]
    # A cross-validated choice's folds, one step each.
    folds = choice.folds.get(model.family, [])
    metrics += [Metric("cv/accuracy", rounded({"a": a})["a"], now, fold) for fold, a in enumerate(folds)]
    more_tags = {
        "training_key": model.training_key,
        "selected": str(model.family == choice.family).lower(),
        "selected_by": choice.selected_by,
        "flags": ", ".join(flags) or "none",
        **start_tags(model),
    }
    if hasattr(model, "best_epoch"):  # a network: the curves end at the last epoch, the weights kept are this one's
        metrics.append(Metric("train/best_epoch", model.best_epoch, now, 0))
        more_tags |= {
            "accelerator": model.accelerator,
            "world_size": model.world_size,
            "samples_per_rank": ",".join(map(str, model.samples_per_rank)),
            "resumed_from_epoch": model.resumed_from_epoch,
        }
    params = [Param(k, str(v)) for k, v in model.run_params().items()]
    client = mlflow.MlflowClient()
    try:
        client.log_batch(run_id, metrics, params, [RunTag(k, str(v)) for k, v in more_tags.items()])
        client.log_dict(run_id, asdict(model.config), "train_config.json")  # the whole config, for `mlpipe reproduce`
        for path in [evaluation.confusion_matrix_path, *evaluation.artifacts]:
            client.log_artifact(run_id, str(path), artifact_path="evaluation")
    except BaseException:
        client.set_terminated(run_id, "FAILED")  # as `mlflow.start_run`'s block would have ended it
        raise
    # The run lasts as long as its training did, not as long as its logging.
    end_time = int(model.finished_at * 1000) if model.finished_at else None
    client.set_terminated(run_id, end_time=end_time)
    return run_id


def start_tags(model: Candidate) -> dict[str, str]:
    """Where a candidate's weights started: `init` is scratch, a backbone's name or the models:/
    URI of the version it was carried from; a registered source's URI, version and run are
    `init_from`, `init_from.version` and `init_from.run_id`."""
    members = getattr(model, "members", None)
    if members is not None:  # an ensemble: its members' starts (and a registered source's lineage)
        tags = [start_tags(m) for m in members]
        return {k: v for t in tags for k, v in t.items()} | {"init": ", ".join(sorted({t["init"] for t in tags}))}
    config = model.config
    start = getattr(config, "init", None) or {}
    tags = {"init": config.init_label if start else "scratch"}
    if "run_id" in start:  # --init-from's version, or an encoder `mlpipe pretrain` registered
        tags["init_from"] = start.get("init_from", start.get("backbone"))
        tags |= {"init_from.version": start["version"], "init_from.run_id": start["run_id"]}
    return tags


def version_summary(run) -> str:
    """What a registered version is, from its candidate run, as Markdown for its description."""
    metrics, tags = run.data.metrics, run.data.tags
    rows = [("family", tags.get("family", "?"))]
    rows += [(name, f"{metrics[name]:.4f}") for name in SUMMARY_METRICS if name in metrics]
    rows += [("data hash", tags.get("data_hash", "?")[:12]), ("git commit", tags.get("git_sha", "?")[:12])]
    rows += [("flow run", tags.get("prefect_flow_run_name", "?"))]
    lines = ["## The version", "", "| | |", "|---|---|", *(f"| {name} | {value} |" for name, value in rows)]
    return "\n".join(lines)


def created_run(experiment_id: str, name: str | None, tags: dict, started_at: float | None) -> str:
    """A run that began at `started_at` (Unix time; None: now), with the source and user tags
    `mlflow.start_run` would give it."""
    import mlflow

    from tasks.registry.mlflow_private import run_context_tags

    start_time = int(started_at * 1000) if started_at else None
    run = mlflow.MlflowClient().create_run(
        experiment_id, start_time=start_time, tags=run_context_tags(tags), run_name=name
    )
    return run.info.run_id


def _dataset_input(dataset: Dataset):
    """The data set as MLflow's dataset panel shows it: name, version (the data hash), source and
    the columns' schema, read from its first rows (MLflow's own from_pandas reads every row: 38 s
    for a million)."""
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.data.sources import LocalArtifactDatasetSource
    from mlflow.models import infer_signature

    source = LocalArtifactDatasetSource(str(dataset.spec_path or dataset.path))
    schema = infer_signature(dataset.frame.head(100)).inputs
    return MetaDataset(source, name=dataset.name, digest=dataset.data_hash[:12], schema=schema)


def dataset_params(dataset: Dataset, split: Split) -> dict:
    """What was trained on, as run params: the spec's settings and the size of each part."""
    params = {
        "name": dataset.name,
        "modality": dataset.modality,
        "path": str(dataset.path),
        "label_column": dataset.label_column,
        "features": len(dataset.feature_columns),
        "classes": len(dataset.classes),
        "rows.train": len(split.train),
        "rows.val": len(split.val),
        "rows.test": len(split.test),
        "test": "explicit file" if dataset.test_positions is not None else f"fraction {dataset.test_fraction}",
    }
    if dataset.image_shape:
        params["image_shape"] = "x".join(map(str, dataset.image_shape))
    return params
