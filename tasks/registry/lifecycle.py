"""The life of a registered version, from a run's candidates to its promotion decision: the states,
the tags and aliases that show them, and one function per transition. The registry is the only
record: a crash anywhere leaves one of these states, and the next identical run (same data,
candidates and selection code, found by the version's `candidates_key` tag) derives it with
`derive` and carries on from there.

    NEW --register_version--> REGISTERED --record_decision (the decision's tags)--+
                                                                                  |
               +---------------- not promoted (or a warn-only run) ---------------+
               |                                                                  | promoted
               v                                                                  v
        mark_decided --> DECIDED <-- mark_decided <-- ALIAS_MOVED <-- move_alias -+
                            ^                              |
                            +-------- finish_move ---------+  (the next run, after a crash)

    state        what the registry shows                             what the next identical run does
    NEW          no version tagged with this `candidates_key`        logs the runs, registers, decides
    REGISTERED   the version; no `promotion` tag; @champion elsewhere  reuses its runs; the gate decides
    ALIAS_MOVED  @champion on it; no `promotion` tag                 finish_move: history, @compact, marker
    DECIDED      the `promotion` tag, written last: the marker       reuses the version; logs nothing new

A crash at each step, in order, leaves:
1. logging the candidates' runs, before the version is registered: NEW; those runs stay in the
   experiment, and the next run logs its own and registers.
2. registering, after MLflow registered the version but before the reply (a retry): REGISTERED;
   the retry derives the state again and returns that version instead of a second one.
3. the gate, after @challenger or some of the decision's tags, before @champion moves:
   REGISTERED; the next run re-scores the champion, decides again and replaces the decision's tags
   (one the new decision lacks is deleted).
4. move_alias, after @champion moved, before the champion history or @compact: ALIAS_MOVED;
   `champion_history` already ends with the version when read, `finish_move` writes it down,
   drops a stale @compact and writes the marker, without re-scoring or a serving check.
5. after the history, before the marker: ALIAS_MOVED; `finish_move` writes the marker.
A warn-only run goes REGISTERED -> DECIDED (not promoted) without the lock or any alias.

Who dispatches: `register` (tasks/registry/tasks.py) on the state `log_candidates` derived (NEW:
register, then the gate; REGISTERED or ALIAS_MOVED: the gate; DECIDED: reuse); the gate
(promotion.decide_promotion) on the state derived again under the promotion lock, since another
run may have moved it meanwhile (ALIAS_MOVED: finish_move; DECIDED: the recorded decision, nothing
written; REGISTERED: re-score, decide, record_decision).
"""

import json
from dataclasses import dataclass
from enum import Enum

from tasks.infra.retrying import is_transient
from tasks.registry.aliases import HISTORY_TAG, MARKER_TAG, champion_history, drop_stale_compact, move_champion
from tasks.registry.run_logging import version_summary

CANDIDATES_KEY_TAG = "candidates_key"  # on the version: what it was made from (registering.candidates_key)
DECISION_TAG = MARKER_TAG  # "promotion", on the version: the decision's reason; written last, the marker of DECIDED
CHAMPION_VERSION_TAG = "promotion.champion_version"  # on the version: the champion it was judged against
CHAMPION = "champion"  # alias: the version that serves
CHALLENGER = "challenger"  # alias: the newest version the gate has seen


class State(Enum):
    NEW = "new"  # no version with this candidates key
    REGISTERED = "registered"  # a version, no decision
    ALIAS_MOVED = "alias_moved"  # @champion points at it, the marker is not written
    DECIDED = "decided"  # the marker is written


@dataclass(frozen=True)
class Standing:
    state: State
    version: object | None = None  # the MLflow ModelVersion, None when NEW


def state_of(version, champion) -> State:
    """The state of a ModelVersion (or None) while @champion points at `champion` (or None)."""
    if version is None:
        return State.NEW
    if DECISION_TAG in version.tags:
        return State.DECIDED
    if champion is not None and str(champion) == str(version.version):
        return State.ALIAS_MOVED
    return State.REGISTERED


def derive(client, name: str, key: str) -> Standing:
    """The state of the version registered from the candidates whose key is `key`."""
    version = registered_version_of(client, name, key)
    if version is None:
        return Standing(State.NEW)
    return Standing(state_of(version, champion_of(client, name)), version)


def version_state(client, name: str, version: str) -> State:
    """The state of a version known by its number."""
    return state_of(client.get_model_version(name, version), champion_of(client, name))


def champion_of(client, name: str) -> str | None:
    """The version @champion points at, or None."""
    champion = client.get_registered_model(name).aliases.get(CHAMPION)
    return str(champion) if champion is not None else None


def registered_version_of(client, name: str, key: str):
    """The model version registered from exactly these candidates, or None."""
    from mlflow.exceptions import MlflowException

    try:
        found = client.search_model_versions(f"name = '{name}' and tags.{CANDIDATES_KEY_TAG} = '{key}'")
    except MlflowException as error:
        if is_transient(error):
            raise  # an unreachable store is not an empty one
        return None  # no registered model yet
    return max(found, key=lambda v: int(v.version)) if found else None


def register_version(dataset, split, model, run_id: str, version_tags: dict[str, str]) -> str:
    """NEW -> REGISTERED: the model as a new version. A retry whose first attempt registered it
    before failing (a lost reply) finds that version instead."""
    import mlflow

    from tasks.registry.packaging import log_and_register

    standing = derive(mlflow.MlflowClient(), dataset.name, version_tags[CANDIDATES_KEY_TAG])
    if standing.state is not State.NEW:
        return str(standing.version.version)
    return log_and_register(dataset, split, model, run_id, version_tags)


def record_decision(client, name: str, version: str, decision):
    """REGISTERED -> DECIDED, through ALIAS_MOVED when promoted: the decision's tags and the
    version's description, then @champion, then the marker. `decision`: promotion.Decision."""
    tags = decision.tags()
    reason = tags.pop(DECISION_TAG)
    registered = client.get_model_version(name, version)
    for key in registered.tags:  # an earlier attempt's figures this decision has not (say, the champion's)
        if key.startswith(f"{DECISION_TAG}.") and key not in tags:
            client.delete_model_version_tag(name, version, key)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    # The registry's page of the version opens on this: the decision, then what the version is.
    summary = version_summary(client.get_run(registered.run_id))
    client.update_model_version(name, version, description=f"{decision.markdown(name, version)}\n\n{summary}")
    if decision.promote:
        move_alias(client, name, version)
    mark_decided(client, name, version, reason)
    return decision


def move_alias(client, name: str, version: str) -> None:
    """REGISTERED -> ALIAS_MOVED: @champion to the version, then the history, then @compact."""
    move_champion(client, name, version)


def mark_decided(client, name: str, version: str, reason: str) -> None:
    """REGISTERED or ALIAS_MOVED -> DECIDED: the marker, last."""
    client.set_model_version_tag(name, version, DECISION_TAG, reason)


def finish_move(client, name: str, version: str) -> tuple[str, str | None]:
    """ALIAS_MOVED -> DECIDED after a crash: an earlier attempt recorded the decision's tags, passed
    the serving check and moved @champion, then stopped before the history or the marker.
    (reason, the champion it beat or None)."""
    previous = client.get_model_version(name, version).tags.get(CHAMPION_VERSION_TAG)
    history = champion_history(client, name)  # ends with this version: it is the alias's
    client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history))
    drop_stale_compact(client, name, version)
    reason = "champion: " + (f"beat v{previous}" if previous else "first version") + " (recorded by an earlier attempt)"
    mark_decided(client, name, version, reason)
    return reason, previous
