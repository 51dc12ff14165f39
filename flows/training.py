"""The training pipeline: load -> validate -> train candidates -> choose on validation -> test -> register."""

from dataclasses import asdict

from prefect import flow, get_run_logger, runtime

from flows.parameters import PipelineParams, flow_parameters
from flows.run_names import run_namer
from tasks.data.tasks import load_dataset, split_dataset
from tasks.evaluation.cross_validation import make_folds, refit_config, refit_split, uses_cv
from tasks.evaluation.selection import Ensemble
from tasks.evaluation.tasks import choose_by_folds, choose_candidate, evaluate_model
from tasks.infra.errors import MlpipeError
from tasks.infra.lineage import code_version, package_versions, params_hash
from tasks.infra.objects import result_storage
from tasks.infra.params import load_params
from tasks.infra.runs import flow_run_url
from tasks.infra.settings import get_settings
from tasks.infra.tuned import read_tuned
from tasks.registry.registering import Registration
from tasks.registry.store import champion_profile, check_tracking_store
from tasks.registry.tasks import publish_reports, register
from tasks.training.caching import training_dir, training_key
from tasks.training.config import classical_configs, network_configs
from tasks.training.parallel import run_all, torch_threads
from tasks.training.tasks import train_baseline, train_model
from tasks.types import BaselineConfig
from tasks.validation.tasks import publish_validation, validate_dataset


@flow(name="training_pipeline", flow_run_name=run_namer(PipelineParams))
@flow_parameters(PipelineParams)
def training_pipeline(params: PipelineParams) -> Registration:
    """Validate a data set, train candidate networks beside a classical baseline, choose one on the
    validation rows, score the candidates on the held-out test rows, register the chosen one in
    MLflow and make it @champion only if it beats the current one on those test rows."""
    return _train(params)


def _train(params: PipelineParams) -> Registration:
    logger = get_run_logger()
    settings = get_settings()
    project = load_params(settings)  # params.yaml, checked once
    seed = params.seed if params.seed is not None else project.seed
    check_tracking_store(settings)  # an unreachable MLflow server stops the run before any work
    dataset = load_dataset(params.dataset)
    run_dir = settings.outputs_dir / dataset.name / _run_name()
    # Cached results live in the project or the object storage: a rerun with nothing changed reads them back.
    storage = {"result_storage": result_storage(settings)}
    reference = champion_profile(dataset.name, settings)
    report = validate_dataset.with_options(**storage)(dataset, run_dir, project.validation, reference, params.warn_only)
    report = publish_validation(report, run_dir)
    if report.warn_only:
        _tag_flow_run("validation-failed-warn-only")
    parts = split_dataset(dataset, project.split, seed)
    choices = params.model_dump(include={"max_epochs", "batch_size", "learning_rate", "devices", "strategy"})
    tuned = read_tuned(settings, dataset.name)  # `mlpipe tune`'s best settings, over params.yaml's
    starts = params.model_dump(include={"models", "backbone", "init_from"})
    # Every candidate's starting point (a backbone, --init-from's version) is checked before any trains.
    configs = network_configs(project, dataset, parts, seed, settings, choices, tuned, **starts)
    configs += classical_configs(project, dataset.modality, seed, params.models)
    parallel = params.parallel if params.parallel is not None else project.parallel.enabled
    trainer = _Trainer(dataset, storage, project, parallel)
    if uses_cv(parts, project.selection.cv_below):
        models, choice = _choose_by_cv(trainer, parts, configs, project, seed)
    else:
        models = trainer.fit(parts, configs)
        choice = choose_candidate(models, dataset, parts, ensemble=project.selection.ensemble)  # validation rows only
        for family, scores in choice.scores.items():
            logger.info("%s: validation accuracy %.4f", family, scores["val/accuracy"])
    if choice.members:
        models.append(Ensemble([m for m in models if m.family in choice.members]))
    logger.info("chosen on %s: %s (%.4f)", choice.selected_by, choice.family, choice.value)
    candidates = []
    for model in models:  # the test rows, once, after the choice
        evaluation = evaluate_model(model, dataset, parts, run_dir / model.family)
        metrics = evaluation.metrics
        logger.info(
            "%s: test accuracy %.4f, f1_macro %.4f", model.family, metrics["test/accuracy"], metrics["test/f1_macro"]
        )
        candidates.append((model, evaluation))
    flow_run_id = str(runtime.flow_run.id or "none")
    lineage = {
        **code_version(),
        "prefect_flow_run_id": flow_run_id,
        "prefect_flow_run_name": str(runtime.flow_run.name),
        "prefect_flow_run_url": flow_run_url(flow_run_id),
        # What the models depend on: where they trained (one by one or on Dask) is not part of it.
        "params_hash": params_hash(
            params.model_dump(exclude={"parallel"}),
            project.model_dump(exclude_unset=True, exclude={"parallel"}),
            [asdict(c[0].config) for c in candidates],
        ),
        "package_versions": package_versions(),
        # Where a family's tuned settings came from (or that tuning kept the defaults); the
        # registered version names its own.
        **{f"tuning.{f}": t.source() for f, t in tuned.items() if f in params.models},
    }
    policy = project.promotion
    if params.min_delta is not None:
        policy = policy.model_copy(update={"min_delta": params.min_delta})
    registration = register(dataset, parts, report, candidates, choice, lineage, settings, policy, as_tasks=True)
    published = publish_reports(registration, settings, return_state=True)
    if published.is_failed():  # the decision is in MLflow already: the run still succeeds
        logger.warning(
            "reports not published to the Prefect UI: %s; the decision is recorded in MLflow", published.message
        )
    logger.info(
        "registered %s v%s (%s); %s",
        dataset.name,
        registration.version,
        registration.best_family,
        registration.reason,
    )
    for note in registration.notes:
        logger.warning(note)
    return registration


class _Trainer:
    """Trains a run's candidates on a split, each a cached Prefect task: one by one, or at once on Dask."""

    def __init__(self, dataset, storage: dict, project, parallel: bool) -> None:
        self.dataset, self.storage, self.parallel = dataset, storage, project.parallel if parallel else None
        self.settings = get_settings()
        self.network = train_model.with_options(**storage, timeout_seconds=60 * project.train.timeout_minutes)
        self.threads = torch_threads() if parallel else None  # a Dask worker trains with the run's, as it would here

    def fit(self, split, configs: list) -> list:
        return run_all([self.call(split, config) for config in configs], self.parallel)

    def call(self, split, config) -> tuple:
        """(task, its parameters) that train one candidate on `split`."""
        parameters = {"dataset": self.dataset, "split": split, "config": config}
        if isinstance(config, BaselineConfig):
            return train_baseline.with_options(**self.storage), parameters
        key = training_key(self.dataset, split, config)
        out_dir = training_dir(self.settings, self.dataset.name, config.family, key)
        return self.network, parameters | {"out_dir": out_dir, "threads": self.threads}


def _choose_by_cv(trainer: _Trainer, parts, configs: list, project, seed: int) -> tuple[list, object]:
    """Every candidate on every fold, the choice on the out-of-fold figures, then each refitted on
    all training and validation rows (tasks/evaluation/cross_validation.py)."""
    logger = get_run_logger()
    folds = make_folds(trainer.dataset, parts, project.selection.folds, seed)
    if folds.note:
        logger.warning("cross-validation: %s", folds.note)
    k = len(folds.splits)
    logger.info("%d validation rows: choosing by %d-fold cross-validation", len(parts.val), k)
    # Family by family, fold by fold: a killed run resumes at the fold it was in.
    trained = run_all([trainer.call(f, c) for c in configs for f in folds.splits], trainer.parallel)
    by_family = {c.family: trained[i * k : (i + 1) * k] for i, c in enumerate(configs)}
    choice = choose_by_folds(by_family, trainer.dataset, folds, ensemble=project.selection.ensemble)
    for family, scores in choice.scores.items():
        logger.info(
            "%s: out-of-fold accuracy %.4f (sd %.4f over %d folds)",
            family, scores["val/accuracy"], scores["val/accuracy_sd"], k,
        )  # fmt: skip
    refits = [c if isinstance(c, BaselineConfig) else refit_config(c, by_family[c.family]) for c in configs]
    return trainer.fit(refit_split(parts), refits), choice


def _tag_flow_run(tag: str) -> None:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(runtime.flow_run.id)
        client.update_flow_run(flow_run.id, tags=sorted({*flow_run.tags, tag}))


def _run_name() -> str:
    """A folder name per flow run: its start and its id (two runs may start in the same second)."""
    flow_run_id = runtime.flow_run.id
    if not flow_run_id:
        raise MlpipeError("training_pipeline must run as a Prefect flow")
    return f"{runtime.flow_run.scheduled_start_time:%Y%m%dT%H%M%S}-{str(flow_run_id)[:8]}"
