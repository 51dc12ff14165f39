"""The registry stage as Prefect tasks the UI shows one by one: log the candidates, register the
chosen one, the promotion gate, publish the reports; and batch inference's one task."""

from collections.abc import Callable

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.evaluation.scoring import Evaluation
from tasks.evaluation.selection import Choice
from tasks.infra.params import PromotionParams
from tasks.infra.retrying import transient_retries
from tasks.infra.settings import Settings, get_settings
from tasks.registry import registering
from tasks.registry.lifecycle import State
from tasks.registry.promotion import Decision
from tasks.registry.registering import Registration
from tasks.types import Candidate, Dataset, Split
from tasks.validation.report import ValidationReport

# MLflow writes are retried after transient failures only (a server restarting, SQLite's lock);
# bad input fails at once. Each transition derives its state first: a retry does not register twice.
REGISTRY_TASK = {"cache_policy": NO_CACHE, **transient_retries(3)}


log_candidates = task(registering.log_candidates, name="log_candidates", **REGISTRY_TASK)
register_chosen = task(registering.register_chosen, name="register_chosen", **REGISTRY_TASK)


@task(name="promotion_gate", **REGISTRY_TASK)
def promotion_gate(
    dataset: Dataset,
    split: Split,
    version: str,
    evaluation: Evaluation,
    policy: PromotionParams | None,
    warn_only: bool,
    settings: Settings,
    processes: tuple,
) -> Decision:
    """@challenger, and @champion when the version beats the champion re-scored on the same rows."""
    import mlflow

    from tasks.registry.promotion import decide_promotion

    client = mlflow.MlflowClient(settings.tracking_uri)
    return decide_promotion(client, settings, dataset, split, version, evaluation, policy, warn_only, processes)


@task(name="publish_reports", cache_policy=NO_CACHE)
def publish_reports(registration: Registration, settings: Settings) -> None:
    """The decision, the leaderboard and links into MLflow, as artifacts in the Prefect UI."""
    from tasks.registry.leaderboard import publish

    publish(registration, settings)


def register(
    dataset: Dataset,
    split: Split,
    report: ValidationReport,
    candidates: list[tuple[Candidate, Evaluation]],
    choice: Choice,
    lineage: dict[str, str],
    settings: Settings,
    policy: PromotionParams | None = None,
    as_tasks: bool = False,
) -> Registration:
    """Derive the state of the version these candidates make, then carry it to DECIDED
    (tasks/registry/lifecycle.py): as Prefect tasks when `as_tasks` (the flow), else as plain calls."""
    import mlflow

    from tasks.registry.card import log_card, model_card
    from tasks.registry.serving import FreshProcess

    def stage(a_task):
        return a_task if as_tasks else a_task.fn

    # Fresh processes, started now so that their imports overlap the logging: one re-scores the
    # champion, one checks that the new version serves, each with its own registered code.
    with FreshProcess() as champion_process, FreshProcess() as challenger_process:
        logged = stage(log_candidates)(dataset, split, report, candidates, choice, lineage, settings)
        if logged.state is State.DECIDED:  # nothing left to do
            client = mlflow.MlflowClient(settings.tracking_uri)
            return registering.reused(client, dataset.name, client.get_model_version(dataset.name, logged.version))
        if logged.state is State.NEW:
            version = stage(register_chosen)(dataset, split, candidates, choice, logged)
        else:  # REGISTERED or ALIAS_MOVED: an earlier run registered it, then stopped
            version = logged.version
        evaluation = next(e for m, e in candidates if m.family == choice.family)
        processes = (champion_process, challenger_process)
        decision = stage(promotion_gate)(
            dataset, split, version, evaluation, policy, report.warn_only, settings, processes
        )  # REGISTERED or ALIAS_MOVED -> DECIDED
    card = model_card(dataset, split, candidates, choice, version, decision, lineage)
    log_card(card, logged.candidate_run_ids[choice.family])  # the version's own run, beside its model
    return registering.registration_of(dataset, choice, logged, version, decision)


@task(name="predict_file", cache_policy=NO_CACHE)
def predict_file_task(
    dataset: str, input_path: str, output_path: str, alias: str = "champion", watch_for: Callable | None = None
) -> dict:
    """Label a file of raw rows with the data set's @champion (or `alias`); the output stays under
    outputs/. `watch_for`: monitoring's, from the same pass (batch_scoring.predict_file)."""
    from tasks.registry.batch_scoring import confined_input, confined_output, predict_file

    settings = get_settings()
    # Before reading anything: the caller may be anyone who reaches the API.
    output, rows = confined_output(output_path, settings), confined_input(input_path, settings)
    return predict_file(dataset, rows, output, settings, alias=alias, watch_for=watch_for)
