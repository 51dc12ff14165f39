"""Registration's states (tasks/registry/lifecycle.py), each transition and each crash point, on
a real MLflow store with a classical baseline (cheap to fit and register). A crash is written by
hand with MlflowClient: the registry as the step before it left it."""

import dataclasses
import json
from types import SimpleNamespace

import mlflow
import pytest
from conftest import LINEAGE

from tasks.infra.settings import CODE_ROOT, Settings
from tasks.registry import lifecycle
from tasks.registry.aliases import HISTORY_TAG, champion_history
from tasks.registry.lifecycle import DECISION_TAG, State
from tasks.registry.promotion import decide_promotion
from tasks.registry.registering import candidates_key, log_candidates, register_chosen
from tasks.registry.serving import FreshProcess
from tasks.registry.tasks import register

NO_PROCESSES = (None, None)  # the gate may neither re-score nor check serving: either would fail on None


@pytest.fixture(scope="module")
def run_inputs(digits, digits_split, tmp_path_factory):
    """What `register` takes, for a baseline: (report, candidates, choice)."""
    from conftest import validate

    from tasks.evaluation.scoring import evaluate
    from tasks.evaluation.tasks import choose_candidate
    from tasks.training.baseline import fit_baseline
    from tasks.types import BaselineConfig

    folder = tmp_path_factory.mktemp("states")
    report = validate(digits.frame, "digits", CODE_ROOT / "expectations" / "digits.json", folder / "validation.json")
    model = fit_baseline(digits, digits_split, BaselineConfig(seed=0))
    evaluation = evaluate(model, digits, digits_split, folder / "outputs")
    return report, [(model, evaluation)], choose_candidate.fn([model], digits, digits_split)


def retrained(run_inputs):
    """The same model under another training key: another version, as after a retrain."""
    report, [(model, evaluation)], choice = run_inputs
    return report, [(dataclasses.replace(model, training_key="retrained"), evaluation)], choice


def run(digits, digits_split, inputs, workspace):
    """One identical run's registration, as plain calls."""
    report, candidates, choice = inputs
    return register(digits, digits_split, report, candidates, choice, LINEAGE, Settings(root=workspace))


def store(workspace) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(Settings(root=workspace).tracking_uri)


def standing(digits, inputs, workspace) -> lifecycle.Standing:
    return lifecycle.derive(store(workspace), "digits", candidates_key(digits, inputs[1]))


def gate(digits, digits_split, workspace, version, inputs, warn_only, processes):
    """The promotion gate of the run that registered `version`."""
    client, settings, evaluation = store(workspace), Settings(root=workspace), inputs[1][0][1]
    return decide_promotion(client, settings, digits, digits_split, version, evaluation, None, warn_only, processes)


def registered_only(digits, digits_split, inputs, workspace) -> str:
    """NEW -> REGISTERED, then a crash before the gate."""
    report, candidates, choice = inputs
    logged = log_candidates(digits, digits_split, report, candidates, choice, LINEAGE, Settings(root=workspace))
    assert logged.state is State.NEW
    return register_chosen(digits, digits_split, candidates, choice, logged)


def test_each_state_is_read_from_the_marker_tag_and_the_champion_alias():
    version = SimpleNamespace(version=3, tags={"candidates_key": "k"})
    assert lifecycle.state_of(None, None) is State.NEW
    assert lifecycle.state_of(version, None) is State.REGISTERED
    assert lifecycle.state_of(version, 2) is State.REGISTERED  # another version serves
    assert lifecycle.state_of(version, 3) is State.ALIAS_MOVED  # MLflow gives aliases' versions as ints
    decided = SimpleNamespace(version="3", tags={"promotion": "champion: first version"})
    assert lifecycle.state_of(decided, "3") is State.DECIDED and lifecycle.state_of(decided, None) is State.DECIDED
    # The tag names are contracts other code reads: they must not change.
    assert (lifecycle.CANDIDATES_KEY_TAG, DECISION_TAG) == ("candidates_key", "promotion")
    assert (lifecycle.CHAMPION, lifecycle.CHALLENGER, HISTORY_TAG) == ("champion", "challenger", "champion_history")


def test_a_first_run_goes_new_registered_decided_and_the_next_identical_one_logs_nothing(
    digits, digits_split, run_inputs, workspace
):
    assert standing(digits, run_inputs, workspace).state is State.NEW
    version = registered_only(digits, digits_split, run_inputs, workspace)
    assert (version, standing(digits, run_inputs, workspace).state) == ("1", State.REGISTERED)

    first = run(digits, digits_split, run_inputs, workspace)  # REGISTERED -> ALIAS_MOVED -> DECIDED
    assert (first.version, first.promoted, first.reused) == ("1", True, False)
    assert first.reason.startswith("champion: first version (test/accuracy ")
    found = standing(digits, run_inputs, workspace)
    assert found.state is State.DECIDED and found.version.tags[DECISION_TAG] == first.reason
    client = store(workspace)
    assert champion_history(client, "digits") == ["1"]
    assert client.get_registered_model("digits").aliases == {"champion": 1, "challenger": 1}
    runs = len(client.search_runs([client.get_experiment_by_name("digits").experiment_id]))

    again = run(digits, digits_split, run_inputs, workspace)
    assert again.reused and again.version == "1"
    assert len(client.search_runs([client.get_experiment_by_name("digits").experiment_id])) == runs
    assert [v.version for v in client.search_model_versions("name='digits'")] == [1]


def test_a_retried_registration_whose_reply_was_lost_registers_nothing_twice(
    digits, digits_split, run_inputs, workspace
):
    report, candidates, choice = run_inputs
    logged = log_candidates(digits, digits_split, report, candidates, choice, LINEAGE, Settings(root=workspace))
    first = register_chosen(digits, digits_split, candidates, choice, logged)
    retry = register_chosen(digits, digits_split, candidates, choice, logged)  # the same task, tried again
    assert first == retry == "1"
    assert [v.version for v in store(workspace).search_model_versions("name='digits'")] == [1]


def test_a_gate_that_stopped_before_the_alias_moved_decides_again(digits, digits_split, run_inputs, workspace):
    version = registered_only(digits, digits_split, run_inputs, workspace)
    client = store(workspace)
    # The gate set @challenger and some of its tags, then stopped: no alias, no marker.
    client.set_registered_model_alias("digits", "challenger", version)
    client.set_model_version_tag("digits", version, "promotion.decision", "not promoted")
    client.set_model_version_tag("digits", version, "promotion.challenger_accuracy", "0.100000")
    client.set_model_version_tag("digits", version, "promotion.champion_accuracy", "0.990000")  # a champion since gone
    assert standing(digits, run_inputs, workspace).state is State.REGISTERED

    evaluation = run_inputs[1][0][1]
    with FreshProcess() as champion_process, FreshProcess() as challenger_process:
        processes = (champion_process, challenger_process)
        decision = gate(digits, digits_split, workspace, version, run_inputs, False, processes)
    assert decision.promote and decision.reason.startswith("champion: first version")
    tags = client.get_model_version("digits", version).tags
    assert tags["promotion.decision"] == "promoted" and tags[DECISION_TAG] == decision.reason
    assert float(tags["promotion.challenger_accuracy"]) == pytest.approx(evaluation.metrics["test/accuracy"])
    assert "promotion.champion_accuracy" not in tags  # this decision had no champion to score
    assert standing(digits, run_inputs, workspace).state is State.DECIDED
    assert champion_history(client, "digits") == ["1"]


@pytest.mark.parametrize("history_written", [False, True], ids=["before-the-history", "before-the-marker"])
def test_a_promotion_that_stopped_after_the_alias_moved_is_finished_by_the_next_run(
    history_written, digits, digits_split, run_inputs, workspace
):
    assert run(digits, digits_split, run_inputs, workspace).promoted  # v1, DECIDED, champion
    second = retrained(run_inputs)
    version = registered_only(digits, digits_split, second, workspace)
    client = store(workspace)
    client.set_model_version_tag("digits", "1", "compact_of", "1")  # a compressed variant judged against v1
    client.set_registered_model_alias("digits", "compact", "1")
    # v2's gate recorded its decision, passed the serving check and moved @champion, then stopped.
    client.set_model_version_tag("digits", version, "promotion.decision", "promoted")
    client.set_model_version_tag("digits", version, "promotion.champion_version", "1")
    client.set_registered_model_alias("digits", "challenger", version)
    client.set_registered_model_alias("digits", "champion", version)
    if history_written:
        client.set_registered_model_tag("digits", HISTORY_TAG, json.dumps(["1", version]))
    assert standing(digits, second, workspace).state is State.ALIAS_MOVED
    assert champion_history(client, "digits") == ["1", "2"]  # the alias completes the history when read

    finished = run(digits, digits_split, second, workspace)  # no re-scoring: it would judge v2 against itself
    assert (finished.version, finished.promoted, finished.reused) == ("2", True, False)
    assert finished.reason == "champion: beat v1 (recorded by an earlier attempt)"
    assert standing(digits, second, workspace).state is State.DECIDED
    assert client.get_model_version("digits", "2").tags[DECISION_TAG] == finished.reason
    assert json.loads(client.get_registered_model("digits").tags[HISTORY_TAG]) == ["1", "2"]  # written, once
    assert client.get_registered_model("digits").aliases == {"champion": 2, "challenger": 2}  # @compact of v1 gone
    assert [v.version for v in client.search_model_versions("name='digits'")] == [2, 1]


def test_a_gate_that_finds_the_version_decided_by_an_identical_run_changes_nothing(
    digits, digits_split, run_inputs, workspace
):
    first = run(digits, digits_split, run_inputs, workspace)
    client = store(workspace)
    before = client.get_model_version("digits", "1").tags
    # This run derived REGISTERED, then waited for the lock while an identical run decided.
    decision = gate(digits, digits_split, workspace, "1", run_inputs, False, NO_PROCESSES)
    assert (decision.promote, decision.reason, decision.champion_version) == (True, first.reason, None)
    assert client.get_model_version("digits", "1").tags == before
    assert champion_history(client, "digits") == ["1"]


def test_a_warn_only_version_goes_to_decided_without_any_alias(digits, digits_split, run_inputs, workspace):
    version = registered_only(digits, digits_split, run_inputs, workspace)
    client = store(workspace)
    decision = gate(digits, digits_split, workspace, version, run_inputs, True, NO_PROCESSES)
    assert not decision.promote and "--warn-only" in decision.reason
    assert standing(digits, run_inputs, workspace).state is State.DECIDED
    assert client.get_registered_model("digits").aliases == {}
    assert client.get_model_version("digits", version).tags["promotion.decision"] == "not promoted"
