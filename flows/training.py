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
from tasks.infra.lineage import training_lineage
from tasks.infra.objects import result_storage
from tasks.infra.params import load_params
from tasks.infra.settings import get_settings
from tasks.infra.tuned import read_tuned
from tasks.registry.registering import Registration
from tasks.registry.store import champion_profile, check_tracking_store
from tasks.registry.tasks import publish_reports, register
from tasks.training.caching import training_dir, training_key
from tasks.training.config import classical_configs, network_configs
from tasks.training.parallel import CandidateCall, run_all, torch_threads
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
    settings = get_settings()
    project = load_params(settings)  # params.yaml, checked once
    seed = params.seed if params.seed is not None else project.seed
    check_tracking_store(settings)  # an unreachable MLflow server stops the run before any work
    dataset = load_dataset(params.dataset)
    run_dir = settings.outputs_dir / dataset.name / _run_name()
    # Cached results live in the project or the object storage: a rerun with nothing changed reads them back.
    storage = {"result_storage": result_storage(settings)}
    report = _validate(dataset, run_dir, project, params.warn_only, settings, storage)
    parts = split_dataset(dataset, project.split, seed)
    tuned = read_tuned(settings, dataset.name)  # `mlpipe tune`'s best settings, over params.yaml's
    configs = _candidate_configs(params, project, dataset, parts, seed, settings, tuned)
    parallel = params.parallel if params.parallel is not None else project.parallel.enabled
    models, choice = _train_and_choose(_Trainer(dataset, storage, project, parallel), parts, configs, project, seed)
    candidates = _score_on_test(models, dataset, parts, run_dir)
    lineage = _lineage(params, project, candidates, tuned)
    policy = _promotion_policy(params, project)
    registration = register(dataset, parts, report, candidates, choice, lineage, settings, policy, as_tasks=True)
    _publish(registration, settings)
    return registration


def _validate(dataset, run_dir, project, warn_only: bool, settings, storage: dict):
    """The data set's validation report (drift measured against the champion's data), published;
    a failure the run goes on despite (--warn-only) tags the flow run."""
    reference = champion_profile(dataset.name, settings)
    report = validate_dataset.with_options(**storage)(dataset, run_dir, project.validation, reference, warn_only)
    report = publish_validation(report, run_dir)
    if report.warn_only:
        _tag_flow_run("validation-failed-warn-only")
    return report


def _candidate_configs(params: PipelineParams, project, dataset, parts, seed: int, settings, tuned: dict) -> list:
    """The networks' configs (the run's choices over tuned settings over params.yaml's) and the classical ones."""
    choices = params.model_dump(include={"max_epochs", "batch_size", "learning_rate", "devices", "strategy"})
    starts = params.model_dump(include={"models", "backbone", "init_from"})
    # Every candidate's starting point (a backbone, --init-from's version) is checked before any trains.
    configs = network_configs(project, dataset, parts, seed, settings, choices, tuned, **starts)
    return configs + classical_configs(project, dataset.modality, seed, params.models)


def _train_and_choose(trainer: "_Trainer", parts, configs: list, project, seed: int) -> tuple[list, object]:
    """The candidates trained and one chosen (by cross-validation when there are few validation
    rows); a chosen ensemble joins them as one more model."""
    if uses_cv(parts, project.selection.cv_below):
        models, choice = _choose_by_cv(trainer, parts, configs, project, seed)
    else:
        models, choice = _choose_on_validation(trainer, parts, configs, project)
    if choice.members:
        models.append(Ensemble([m for m in models if m.family in choice.members]))
    get_run_logger().info("chosen on %s: %s (%.4f)", choice.selected_by, choice.family, choice.value)
    return models, choice


def _score_on_test(models: list, dataset, parts, run_dir) -> list[tuple]:
    """(model, its evaluation) for each model: the test rows, once, after the choice."""
    logger = get_run_logger()
    candidates = []
    for model in models:
        evaluation = evaluate_model(model, dataset, parts, run_dir / model.family)
        metrics = evaluation.metrics
        logger.info(
            "%s: test accuracy %.4f, f1_macro %.4f", model.family, metrics["test/accuracy"], metrics["test/f1_macro"]
        )
        candidates.append((model, evaluation))
    return candidates


def _lineage(params: PipelineParams, project, candidates: list, tuned: dict) -> dict[str, str]:
    """The run's lineage (tasks/infra/lineage.py) from what its models depend on and its families' tuned settings."""
    # What the models depend on: where they trained (one by one or on Dask) is not part of it.
    depends_on = [
        params.model_dump(exclude={"parallel"}),
        project.model_dump(exclude_unset=True, exclude={"parallel"}),
        [asdict(model.config) for model, _ in candidates],
    ]
    # Where each of the run's families' tuned settings came from; the registered version names its own.
    families = {family: entry for family, entry in tuned.items() if family in params.models}
    return training_lineage(str(runtime.flow_run.id or "none"), str(runtime.flow_run.name), depends_on, families)


def _promotion_policy(params: PipelineParams, project):
    """params.yaml's promotion policy, with the run's --min-delta over its own."""
    if params.min_delta is None:
        return project.promotion
    return project.promotion.model_copy(update={"min_delta": params.min_delta})


def _publish(registration: Registration, settings) -> None:
    """The reports in the Prefect UI, and what the run registered and decided in its log."""
    logger = get_run_logger()
    published = publish_reports(registration, settings, return_state=True)
    if published.is_failed():  # the decision is in MLflow already: the run still succeeds
        logger.warning(
            "reports not published to the Prefect UI: %s; the decision is recorded in MLflow", published.message
        )
    logger.info(
        "registered %s v%s (%s); %s",
        registration.dataset,
        registration.version,
        registration.best_family,
        registration.reason,
    )
    for note in registration.notes:
        logger.warning(note)


class _Trainer:
    """Trains a run's candidates on a split, each a cached Prefect task: one by one, or at once on Dask."""

    def __init__(self, dataset, storage: dict, project, parallel: bool) -> None:
        self.dataset, self.storage, self.parallel = dataset, storage, project.parallel if parallel else None
        self.settings = get_settings()
        self.network = train_model.with_options(**storage, timeout_seconds=60 * project.train.timeout_minutes)
        self.threads = torch_threads() if parallel else None  # a Dask worker trains with the run's, as it would here

    def fit(self, split, configs: list) -> list:
        return self.run([self.call(split, config) for config in configs])

    def run(self, calls: list[CandidateCall]) -> list:
        """The calls' results, in their order."""
        return run_all(calls, self.parallel)

    def call(self, split, config) -> CandidateCall:
        """The call that trains one candidate on `split`."""
        kwargs = {"dataset": self.dataset, "split": split, "config": config}
        if isinstance(config, BaselineConfig):
            return CandidateCall(train_baseline.with_options(**self.storage), kwargs)
        key = training_key(self.dataset, split, config)
        out_dir = training_dir(self.settings, self.dataset.name, config.family, key)
        return CandidateCall(self.network, kwargs | {"out_dir": out_dir, "threads": self.threads})


def _choose_on_validation(trainer: _Trainer, parts, configs: list, project) -> tuple[list, object]:
    """Every candidate trained once, the choice on the validation rows only."""
    models = trainer.fit(parts, configs)
    choice = choose_candidate(models, trainer.dataset, parts, ensemble=project.selection.ensemble)
    for family, scores in choice.scores.items():
        get_run_logger().info("%s: validation accuracy %.4f", family, scores["val/accuracy"])
    return models, choice


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
    trained = trainer.run([trainer.call(f, c) for c in configs for f in folds.splits])
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
