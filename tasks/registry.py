"""MLflow: log every candidate, register the best and move @champion only when it is better."""

import os
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.datasets import Dataset, Split
from tasks.errors import MlpipeError
from tasks.evaluation import Candidate, Evaluation
from tasks.retrying import transient_retries
from tasks.selection import SELECTED_BY, Choice
from tasks.settings import CODE_ROOT, Settings, get_settings
from tasks.validation import ValidationReport

PRIMARY_METRIC = "test/accuracy"


@dataclass
class Registration:
    dataset: str
    parent_run_id: str
    candidate_run_ids: dict[str, str]  # family -> run id
    best_family: str  # the candidate chosen on the validation rows
    version: str
    champion_version: str
    promoted: bool
    reason: str
    decision_markdown: str = ""  # the promotion decision, for the Prefect UI
    reused: bool = False  # nothing changed since this version was registered: nothing new was logged
    notes: list[str] = field(default_factory=list)  # plain lines for the run's summary (tasks/selection.py)


def connect(settings: Settings, experiment: str, create: bool = True) -> str | None:
    """Point MLflow at the store and return the experiment's id (None if absent and not created)."""
    import logging

    import mlflow

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)  # schema migration chatter
    # The served model's inputs are read by column name; these hints do not apply to it.
    warnings.filterwarnings("ignore", ".*Inferred schema contains integer column.*")
    warnings.filterwarnings("ignore", ".*Add type hints to the `predict` method.*")
    uri = settings.tracking_uri
    database = Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None
    if database is not None:
        if not create and not database.exists():
            return None  # reading must not create an empty store
        database.parent.mkdir(parents=True, exist_ok=True)
    exported = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    # MLflow also exports the URI to the environment, where Settings reads the user's choice: put
    # the user's value back, or the next project in this process would log into this one's store.
    if exported is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = exported
    from mlflow.exceptions import MlflowException

    with _first_use_lock(database):
        found = mlflow.get_experiment_by_name(experiment)
        if found is not None:
            return found.experiment_id
        if not create:
            return None
        try:
            return mlflow.create_experiment(experiment, artifact_location=f"{settings.artifact_location}/{experiment}")
        except MlflowException:
            found = mlflow.get_experiment_by_name(experiment)  # another run created it a moment ago
            if found is None:
                raise
            return found.experiment_id


def _first_use_lock(database: Path | None):
    """MLflow creates a SQLite store's tables, and mlpipe an experiment, on first use: two runs
    starting at once on a new store would both try ("table ... already exists"). On SQLite the
    first does it while the other waits; a database server serialises that itself."""
    from contextlib import nullcontext

    from filelock import FileLock

    return FileLock(f"{database}.lock") if database is not None else nullcontext()


def check_tracking_store(settings: Settings) -> None:
    """Fail at once, in one line, when the MLflow server is unreachable: before any training."""
    from tasks.servers import require_server

    uri = settings.tracking_uri
    if uri.startswith(("http://", "https://")):  # a database store reports its errors on first use
        require_server(f"{uri.rstrip('/')}/health", "the MLflow tracking server (MLFLOW_TRACKING_URI)")


def candidates_key(dataset: Dataset, candidates: list[tuple[Candidate, Evaluation]]) -> str:
    """What a registered version was made from: the data version and each candidate's training key."""
    from tasks.caching import SELECTION_CODE, cached_code_fingerprint, digest

    # The selection rules too: a change to them may choose another candidate from the same ones.
    trained = sorted((m.family, m.training_key) for m, _ in candidates)
    return digest(dataset.name, dataset.data_hash, trained, cached_code_fingerprint(SELECTION_CODE))


def registered_version_of(client, name: str, key: str):
    """The model version registered from exactly these candidates, or None."""
    from mlflow.exceptions import MlflowException

    try:
        found = client.search_model_versions(f"name = '{name}' and tags.candidates_key = '{key}'")
    except MlflowException:
        return None  # no registered model yet
    return max(found, key=lambda v: int(v.version)) if found else None


def register(
    dataset: Dataset,
    split: Split,
    report: ValidationReport,
    candidates: list[tuple[Candidate, Evaluation]],
    choice: Choice,
    lineage: dict[str, str],
    settings: Settings,
    policy: dict | None = None,
) -> Registration:
    import mlflow

    from tasks.promotion import ServingCheck

    experiment_id = connect(settings, dataset.name)
    client = mlflow.MlflowClient()
    key = candidates_key(dataset, candidates)
    if (existing := registered_version_of(client, dataset.name, key)) is not None:
        return _reuse(client, dataset.name, existing)
    with ServingCheck() as check:  # a fresh process, started now: its imports overlap the logging
        parent_id, run_ids, (best_model, best_eval), version = _log_pipeline_run(
            experiment_id,
            dataset,
            split,
            report,
            candidates,
            choice,
            {"dataset": dataset.name, "data_hash": dataset.data_hash, **lineage},
            key,
        )
        decision = _decide_promotion(client, settings, dataset, split, version, best_eval, policy, check)
    return Registration(
        dataset=dataset.name,
        parent_run_id=parent_id,
        candidate_run_ids=run_ids,
        best_family=best_model.family,
        version=version,
        champion_version=version if decision.promote else decision.champion_version,
        promoted=decision.promote,
        reason=decision.reason,
        decision_markdown="\n\n".join([decision.markdown(dataset.name, version), *choice.notes]),
        notes=choice.notes,
    )


def _log_pipeline_run(experiment_id: str, dataset, split, report, candidates, choice: Choice, tags: dict, key: str):
    """The parent run, a child run per candidate, the best logged as a model and registered:
    (parent run id, family -> run id, (best model, its evaluation), version)."""
    import mlflow

    validation = f"{report.outcome}: {report.report_path}"
    with mlflow.start_run(experiment_id=experiment_id, tags={**tags, "mlpipe.role": "pipeline"}) as parent:
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
        if dataset.spec_path is not None:  # with the data hash, what `mlpipe reproduce` needs
            mlflow.log_text(dataset.spec_path.read_text(), "dataset/spec.yaml")
        run_ids = {}
        for model, evaluation in candidates:
            run_ids[model.family] = _log_candidate(
                model, evaluation, choice, {**tags, "validation": validation}, experiment_id
            )

        best_model, best_eval = next(c for c in candidates if c[0].family == choice.family)
        # What chose, on which figure; the test figure only judges the choice afterwards.
        mlflow.log_metrics(
            {"selected/val_accuracy": choice.value, "selected/test_accuracy": best_eval.metrics[PRIMARY_METRIC]}
        )
        mlflow.set_tags(
            {
                "best_family": best_model.family,
                "selected_family": best_model.family,
                "selected_by": choice.selected_by,
                "selection.notes": " | ".join(choice.notes) or "none",
            }
        )
        mlflow.log_dict(choice.as_dict(), "selection.json")
        version_tags = {
            **tags,
            "family": best_model.family,
            "validation": validation,
            "candidates_key": key,
            "training_key": best_model.training_key,
            "selected_by": choice.selected_by,
            SELECTED_BY: f"{choice.value:.6f}",
            PRIMARY_METRIC: f"{best_eval.metrics[PRIMARY_METRIC]:.6f}",
        }
        version = _log_and_register(dataset, split, best_model, run_ids[best_model.family], version_tags)
    return parent.info.run_id, run_ids, (best_model, best_eval), version


def _decide_promotion(client, settings, dataset, split, version: str, best_eval, policy, check):
    """challenger, then champion if it beats the champion on the same test rows and serves."""
    from tasks.promotion import Decision, champion_correctness, decide, move_champion

    name = dataset.name
    with promotion_lock(settings, name):
        client.set_registered_model_alias(name, "challenger", version)
        test_rows = dataset.frame.iloc[split.test]
        features = test_rows[dataset.feature_columns]
        champion, champion_correct = champion_correctness(client, name, features, test_rows[dataset.label_column])
        correct = best_eval.predictions == dataset.class_indices(split.test)
        decision = decide(correct, champion, champion_correct, policy)
        if decision.promote:
            try:
                check.run(settings.tracking_uri, name, version, features.head(5))
            except MlpipeError as error:
                decision = Decision(False, f"not promoted: {error}", decision.score, champion)
        for key, value in decision.tags().items():
            client.set_model_version_tag(name, version, key, value)
        if champion is not None:
            client.set_model_version_tag(name, champion, f"challenged_by.v{version}", decision.reason)
        if decision.promote:
            move_champion(client, name, version, decision.reason)
    return decision


def _reuse(client, name: str, version) -> Registration:
    """Data, parameters and code are what registered this version: point at it, log nothing new."""
    aliases = client.get_registered_model(name).aliases
    champion = aliases.get("champion")
    parent = client.get_run(version.run_id).data.tags.get("mlflow.parentRunId", version.run_id)
    reason = f"unchanged: data, parameters and code are those of v{version.version}; nothing was trained or registered"
    return Registration(
        dataset=name,
        parent_run_id=parent,
        candidate_run_ids={version.tags.get("family", "?"): version.run_id},
        best_family=version.tags.get("family", "?"),
        version=str(version.version),
        champion_version=str(champion) if champion is not None else None,
        promoted=False,
        reason=reason,
        decision_markdown=f"# `{name}`: unchanged\n\n{reason[0].upper()}{reason[1:]}.",
        reused=True,
    )


def _log_candidate(model: Candidate, evaluation: Evaluation, choice: Choice, tags: dict, experiment_id: str) -> str:
    import mlflow

    flags = choice.flags(model.family)
    with mlflow.start_run(
        experiment_id=experiment_id,
        run_name=model.family,
        nested=True,
        tags={**tags, "mlpipe.role": "candidate", "family": model.family},
    ) as run:
        mlflow.log_params(model.run_params())
        mlflow.log_dict(asdict(model.config), "train_config.json")  # the whole config, for `mlpipe reproduce`
        for epoch in model.history:
            mlflow.log_metrics({k: v for k, v in epoch.items() if k != "epoch"}, step=epoch["epoch"])
        mlflow.log_metrics({**choice.scores[model.family], **evaluation.metrics, "fit_seconds": model.fit_seconds})
        mlflow.set_tags(
            {
                "training_key": model.training_key,
                "selected": str(model.family == choice.family).lower(),
                "flags": ", ".join(flags) or "none",
            }
        )
        if hasattr(model, "best_epoch"):  # a network
            mlflow.log_metric("best_epoch", model.best_epoch)
            mlflow.set_tags(
                {
                    "accelerator": model.accelerator,
                    "world_size": model.world_size,
                    "resumed_from_epoch": model.resumed_from_epoch,
                }
            )
        for path in [evaluation.confusion_matrix_path, *evaluation.artifacts]:
            mlflow.log_artifact(str(path), artifact_path="evaluation")
        return run.info.run_id


def _log_and_register(dataset: Dataset, split: Split, model: Candidate, run_id: str, tags: dict) -> str:
    """Log the chosen candidate as a pyfunc model in its candidate run and register it."""
    import mlflow
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature

    from tasks.drift import profile
    from tasks.packaging import PYFUNC_FILE, requirements, write_model_files

    example = dataset.frame.iloc[split.test[:5]][dataset.feature_columns]  # raw rows, their own dtypes
    probabilities = model.predict_proba(example)
    classes = np.asarray(dataset.classes)
    output = pd.DataFrame({"label": classes[probabilities.argmax(axis=1)], "probability": probabilities.max(axis=1)})
    with TemporaryDirectory() as tmp, mlflow.start_run(run_id=run_id, nested=True):
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(PYFUNC_FILE),
            artifacts=write_model_files(model, Path(tmp)),
            code_paths=[str(CODE_ROOT / "models")],
            signature=infer_signature(example, output),
            input_example=example,
            pip_requirements=requirements(),
        )
        # The champion's data, summarised: the next run's drift check compares against it.
        mlflow.log_dict(profile(dataset), "data/profile.json")
        version = mlflow.register_model(info.model_uri, dataset.name, tags=tags)
    return str(version.version)


@contextmanager
def promotion_lock(settings: Settings, name: str):
    """One champion decision at a time per registered model on this machine: two runs that finish
    together must not both compare against the same old champion and both move the alias."""
    from filelock import FileLock

    settings.mlflow_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(settings.mlflow_dir / f".{name}.promotion.lock", timeout=900):
        yield


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


def champion_profile(dataset: str, settings: Settings) -> dict | None:
    """The data profile stored with the current champion, or None when there is none yet."""
    import mlflow
    from mlflow.exceptions import MlflowException

    if connect(settings, dataset, create=False) is None:
        return None
    client = mlflow.MlflowClient()
    try:
        champion = client.get_model_version_by_alias(dataset, "champion")
        return mlflow.artifacts.load_dict(f"runs:/{champion.run_id}/data/profile.json")
    except MlflowException:
        return None  # no champion, or one registered before profiles were kept


def leaderboard(dataset: str, settings: Settings) -> list[dict]:
    """One row per candidate run of the data set, best first (the `mlpipe compare` contract)."""
    import mlflow

    experiment_id = connect(settings, dataset, create=False)
    if experiment_id is None:
        raise MlpipeError(
            f"no runs for data set {dataset!r} in {settings.tracking_uri}: run `mlpipe run --dataset {dataset}` first"
        )
    runs = mlflow.search_runs(
        experiment_ids=[experiment_id], filter_string="tags.`mlpipe.role` = 'candidate'", output_format="list"
    )
    client = mlflow.MlflowClient()
    versions, aliases = {}, {}
    if runs:
        try:
            model = client.get_registered_model(dataset)
        except mlflow.exceptions.MlflowException:
            model = None  # runs exist but nothing was registered yet
        if model is not None:
            versions = {v.run_id: int(v.version) for v in client.search_model_versions(f"name = '{dataset}'")}
            for alias, version in model.aliases.items():
                aliases.setdefault(int(version), []).append(alias)
    rows = []
    for run in runs:
        version = versions.get(run.info.run_id)
        flags = run.data.tags.get("flags", "none")
        rows.append(
            {
                "run_id": run.info.run_id,
                "dataset": dataset,
                "family": run.data.tags.get("family"),
                "val_accuracy": run.data.metrics.get("selection/val_accuracy"),
                "selected_by": SELECTED_BY if "selection/val_accuracy" in run.data.metrics else None,
                "selected": run.data.tags.get("selected") == "true",
                "flags": [] if flags == "none" else flags.split(", "),
                "test_accuracy": run.data.metrics.get("test/accuracy"),
                "test_f1_macro": run.data.metrics.get("test/f1_macro"),
                "registered_version": version,
                "aliases": sorted(aliases.get(version, [])),
                "data_hash": run.data.tags.get("data_hash"),
                "git_sha": run.data.tags.get("git_sha"),
            }
        )
    # Best first by the figure that chooses; the test figure only breaks ties among older runs without one.
    return sorted(rows, key=lambda r: (r["val_accuracy"] or 0.0, r["test_accuracy"] or 0.0), reverse=True)


def mlflow_ui_url(settings: Settings) -> str:
    """Where people browse the store: the tracking server itself, else the UI `mlpipe up` serves."""
    uri = settings.tracking_uri
    if uri.startswith(("http://", "https://")):
        return uri.rstrip("/")
    return os.environ.get("MLPIPE_MLFLOW_UI_URL", "http://127.0.0.1:5000").rstrip("/")


def publish(registration: Registration, settings: Settings) -> None:
    """The Prefect UI's view of the result: the decision, the leaderboard, links into MLflow."""
    import mlflow
    from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

    from tasks.validation import artifact_key

    name, key = registration.dataset, artifact_key(registration.dataset)
    create_markdown_artifact(
        key=f"promotion-{key}", markdown=registration.decision_markdown, description=registration.reason[:500]
    )
    rows = leaderboard(name, settings)
    columns = (
        "family",
        "val_accuracy",
        "test_accuracy",
        "test_f1_macro",
        "registered_version",
        "aliases",
        "flags",
        "run_id",
    )
    create_table_artifact(
        key=f"leaderboard-{key}",
        table=[{c: ", ".join(row[c]) if c in ("aliases", "flags") else row[c] for c in columns} for row in rows[:50]],
        description=f"Candidate runs of {name}, best validation accuracy first (the figure that chooses)",
    )
    ui = mlflow_ui_url(settings)
    experiment_id = mlflow.MlflowClient().get_run(registration.parent_run_id).info.experiment_id
    create_link_artifact(
        key=f"mlflow-run-{key}",
        link=f"{ui}/#/experiments/{experiment_id}/runs/{registration.parent_run_id}",
        link_text=f"MLflow run of this pipeline run ({name})",
    )
    create_link_artifact(
        key=f"mlflow-model-{key}",
        link=f"{ui}/#/models/{name}/versions/{registration.version}",
        link_text=f"{name} v{registration.version} in the MLflow model registry",
    )


# MLflow writes are retried after transient failures only (a server restarting, SQLite's lock);
# bad input fails at once. The versions found by `candidates_key` keep a retry from registering twice.
@task(
    name="register_model",
    cache_policy=NO_CACHE,
    **transient_retries(3),
)
def register_model(
    dataset: Dataset,
    split: Split,
    report: ValidationReport,
    candidates: list[tuple[Candidate, Evaluation]],
    choice: Choice,
    lineage: dict[str, str],
    policy: dict | None = None,
) -> Registration:
    settings = get_settings()
    registration = register(dataset, split, report, candidates, choice, lineage, settings, policy)
    publish(registration, settings)
    return registration
