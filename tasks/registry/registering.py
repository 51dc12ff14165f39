"""Registering a run's chosen candidate: log the candidates in MLflow, register the chosen one.

The version's state (tasks/registry/lifecycle.py) is derived first, from the version its
candidates made (`candidates_key`): a rerun with nothing changed finds it DECIDED and logs
nothing new; a run stopped after the version was registered but before the gate decided (a kill,
a retry) is finished by the next identical run: the gate decides then.
"""

from dataclasses import dataclass, field

from tasks.evaluation.scoring import Evaluation
from tasks.evaluation.selection import Choice
from tasks.infra.fingerprints import cached_code_fingerprint, digest
from tasks.infra.settings import Settings
from tasks.registry.lifecycle import State, derive, register_version
from tasks.registry.promotion import Decision
from tasks.types import Candidate, Dataset, Split
from tasks.validation.report import ValidationReport

SELECTION_CODE = ("tasks/evaluation/selection.py",)  # the rules that choose from the candidates


@dataclass
class Registration:
    dataset: str
    parent_run_id: str
    candidate_run_ids: dict[str, str]  # family -> run id
    best_family: str  # the candidate chosen on the validation rows
    version: str
    champion_version: str | None  # None: no champion (a warn-only first version)
    promoted: bool
    reason: str
    decision_markdown: str = ""  # the promotion decision, for the Prefect UI
    reused: bool = False  # nothing changed since this version was registered: nothing new was logged
    notes: list[str] = field(default_factory=list)  # plain lines for the run's summary (tasks/evaluation/selection.py)


@dataclass
class Logged:
    """What `log_candidates` found or left in MLflow."""

    parent_run_id: str
    candidate_run_ids: dict[str, str]  # family -> run id
    version_tags: dict[str, str]  # for the version `register_chosen` registers
    version: str | None = None  # registered by an earlier attempt with the same candidates
    state: State = State.NEW  # that version's (tasks/registry/lifecycle.py)


def candidates_key(dataset: Dataset, candidates: list[tuple[Candidate, Evaluation]]) -> str:
    """What a registered version was made from: the data version and each candidate's training key."""
    # The selection rules too: a change to them may choose another candidate from the same ones.
    trained = sorted((m.family, m.training_key) for m, _ in candidates)
    return digest(dataset.name, dataset.data_hash, trained, cached_code_fingerprint(SELECTION_CODE))


def log_candidates(
    dataset: Dataset,
    split: Split,
    report: ValidationReport,
    candidates: list[tuple[Candidate, Evaluation]],
    choice: Choice,
    lineage: dict[str, str],
    settings: Settings,
) -> Logged:
    """The state of the version these candidates make; when NEW, a parent run and a child run per
    candidate, else the runs of that version."""
    import mlflow

    from tasks.registry.run_logging import log_pipeline_run
    from tasks.registry.store import connect

    experiment_id = connect(settings, dataset.name)
    key = candidates_key(dataset, candidates)
    standing = derive(mlflow.MlflowClient(), dataset.name, key)
    if standing.state is not State.NEW:
        parent, run_ids, version = _registered_runs(standing.version)
        return Logged(parent, run_ids, {}, version, standing.state)
    tags = {"dataset": dataset.name, "data_hash": dataset.data_hash, **lineage}
    parent, run_ids, version_tags = log_pipeline_run(
        experiment_id, dataset, split, report, candidates, choice, tags, key
    )
    return Logged(parent, run_ids, version_tags)


def register_chosen(
    dataset: Dataset, split: Split, candidates: list[tuple[Candidate, Evaluation]], choice: Choice, logged: Logged
) -> str:
    """NEW -> REGISTERED: the chosen candidate as a new version of the data set's registered model
    (a pyfunc on raw rows)."""
    model = next(m for m, _ in candidates if m.family == choice.family)
    return register_version(dataset, split, model, logged.candidate_run_ids[model.family], logged.version_tags)


def registration_of(dataset: Dataset, choice: Choice, logged: Logged, version: str, decision: Decision) -> Registration:
    """What the run registered and decided, for its summary."""
    return Registration(
        dataset=dataset.name,
        parent_run_id=logged.parent_run_id,
        candidate_run_ids=logged.candidate_run_ids,
        best_family=choice.family,
        version=version,
        champion_version=version if decision.promote else decision.champion_version,
        promoted=decision.promote,
        reason=decision.reason,
        decision_markdown="\n\n".join([decision.markdown(dataset.name, version), *choice.notes]),
        notes=choice.notes,
    )


def _registered_runs(version) -> tuple[str, dict[str, str], str]:
    """(parent run id, family -> candidate run id, version) of a version registered earlier."""
    import mlflow

    parent = mlflow.get_run(version.run_id).data.tags.get("mlflow.parentRunId", version.run_id)
    children = mlflow.search_runs(
        experiment_ids=[mlflow.get_run(parent).info.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent}'",
        output_format="list",
    )
    return parent, {run.data.tags.get("family"): run.info.run_id for run in children}, str(version.version)


def reused(client, name: str, version) -> Registration:
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
