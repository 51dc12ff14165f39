"""The registry: champion moves, rollbacks, lineage tags, nested runs and the compare contract."""

import json

import mlflow
import numpy as np
import pytest
from conftest import run_mlpipe

from tasks.infra.errors import MlpipeError
from tasks.infra.params import PromotionParams
from tasks.infra.settings import Settings
from tasks.registry.aliases import HISTORY_TAG, champion_history, move_champion, rollback
from tasks.registry.leaderboard import leaderboard
from tasks.registry.promotion import decide


def test_champion_moves_only_to_a_clearly_better_version(registered):
    settings, (weak, strong, weak_again) = registered
    client = mlflow.MlflowClient(settings.tracking_uri)

    assert (weak.version, strong.version, weak_again.version) == ("1", "2", "3")
    assert weak.promoted and strong.promoted and not weak_again.promoted
    assert weak.reason.startswith("champion: first version")
    assert strong.reason.startswith("champion: test/accuracy ") and "vs champion v1's" in strong.reason
    assert weak_again.reason.startswith("not promoted: test/accuracy ")
    assert "the gain is not above min_delta 0.0" in weak_again.reason
    tags = client.get_model_version("digits", "3").tags
    assert tags["promotion"] == weak_again.reason
    assert tags["promotion.decision"] == "not promoted" and tags["promotion.champion_version"] == "2"
    challenger, champion = float(tags["promotion.challenger_accuracy"]), float(tags["promotion.champion_accuracy"])
    assert challenger == pytest.approx(_test_accuracy(client, "3"), abs=1e-6) and challenger < champion
    assert float(tags["promotion.ci_low"]) <= challenger - champion <= float(tags["promotion.ci_high"])
    # The champion re-scored on these rows in a fresh process: its registered figure.
    assert champion == pytest.approx(_test_accuracy(client, "2"), abs=1e-6)
    # The champion's page keeps no trace of each challenge: who challenged it is found from the challengers.
    assert not any(key.startswith("challenged_by") for key in client.get_model_version("digits", "2").tags)
    challengers = client.search_model_versions("name = 'digits' and tags.`promotion.champion_version` = '2'")
    assert [str(v.version) for v in challengers] == ["3"]
    description = client.get_model_version("digits", "3").description  # the decision, where the registry shows it
    assert description.startswith("# Promotion of `digits` v3: not promoted") and weak_again.reason in description
    assert str(client.get_model_version_by_alias("digits", "champion").version) == "2"
    assert str(client.get_model_version_by_alias("digits", "challenger").version) == "3"


def _test_accuracy(client, version: str) -> float:
    return client.get_run(client.get_model_version("digits", version).run_id).data.metrics["test/accuracy"]


def test_an_equal_retrain_is_noise_not_a_promotion():
    correct = np.random.default_rng(0).random(400) < 0.9
    flipped = correct.copy()
    flipped[np.flatnonzero(~correct)[:3]] = True  # three more rows right: +0.75 points, inside the noise
    decision = decide(flipped, "4", correct)
    assert not decision.promote and "3 differing rows are too few to tell a gain from chance" in decision.reason
    assert not decide(correct, "4", correct, PromotionParams(min_delta=0.0)).promote
    assert decide(correct, None, None).promote


def test_rollback_restores_the_previous_champion(own_registry):
    settings, _ = own_registry
    client = mlflow.MlflowClient(settings.tracking_uri)
    assert champion_history(client, "digits") == ["1", "2"]

    assert rollback(client, "digits") == ("2", "1")
    assert str(client.get_model_version_by_alias("digits", "champion").version) == "1"
    with pytest.raises(MlpipeError, match="no earlier champion to roll back to"):
        rollback(client, "digits")
    move_champion(client, "digits", "2")
    move_champion(client, "digits", "2")  # `mlpipe promote` of the champion itself: no second entry
    assert champion_history(client, "digits") == ["1", "2"]


def test_alias_and_history_agree_after_a_move_that_stopped_halfway(own_registry):
    settings, _ = own_registry
    client = mlflow.MlflowClient(settings.tracking_uri)
    assert champion_history(client, "digits") == ["1", "2"]
    client.set_registered_model_alias("digits", "champion", "3")  # moved; the history not yet written
    assert champion_history(client, "digits") == ["1", "2", "3"]
    assert rollback(client, "digits") == ("3", "2")  # from the alias's real version
    assert champion_history(client, "digits") == ["1", "2"]
    # A rollback that wrote the history, then stopped before the alias: as if it never began.
    client.set_registered_model_tag("digits", HISTORY_TAG, json.dumps(["1"]))
    assert champion_history(client, "digits") == ["1", "2"]


def test_versions_carry_lineage_tags(registered, digits):
    settings, results = registered
    version = mlflow.MlflowClient(settings.tracking_uri).get_model_version("digits", "1")

    assert version.tags["family"] == "cnn"
    assert version.tags["data_hash"] == digits.data_hash
    assert version.tags["git_sha"] == "abc123"
    assert version.tags["prefect_flow_run_id"] == "none"
    assert version.tags["validation"].startswith("passed: ")
    assert version.run_id == results[0].candidate_run_ids["cnn"]


def test_runs_nest_candidates_under_a_pipeline_run(registered):
    settings, (first, *_) = registered
    client = mlflow.MlflowClient(settings.tracking_uri)
    child = client.get_run(first.candidate_run_ids["cnn"])
    parent = client.get_run(first.parent_run_id)

    assert child.data.tags["mlflow.parentRunId"] == first.parent_run_id
    assert parent.data.tags["mlpipe.role"] == "pipeline"
    assert 0 < child.data.metrics["test/accuracy"] < 0.9  # the weak model
    assert [m.step for m in client.get_metric_history(child.info.run_id, "epoch/val_loss")] == [0]
    artifacts = {a.path for a in client.list_artifacts(child.info.run_id, "evaluation")}
    assert "evaluation/confusion_matrix.png" in artifacts
    assert client.list_artifacts(parent.info.run_id, "validation")[0].path == "validation/validation.json"


def test_leaderboard_follows_the_compare_contract(registered, digits):
    settings, _ = registered
    rows = leaderboard("digits", settings)

    accuracies = [r["val_accuracy"] for r in rows]  # best first by the figure that chooses
    assert accuracies == sorted(accuracies, reverse=True) and len(rows) == 3
    assert all(r["selected_by"] == "val/accuracy" and r["selected"] for r in rows)
    assert rows[0]["flags"] == [] and all(isinstance(r["flags"], list) for r in rows)
    assert rows[0]["registered_version"] == 2 and rows[0]["aliases"] == ["champion"]
    assert {r["registered_version"]: r["aliases"] for r in rows[1:]} == {1: [], 3: ["challenger"]}
    assert set(rows[0]) == {
        "run_id",
        "dataset",
        "family",
        "init",  # where its weights started: scratch, a backbone, a models:/ URI
        "val_accuracy",
        "val_accuracy_sd",  # over the folds when cross-validation chose; None here
        "selected_by",
        "selected",
        "flags",
        "test_accuracy",
        "test_f1_macro",
        "registered_version",
        "aliases",
        "data_hash",
        "git_sha",
        "experiment_id",
        "started",
        "flow_run",
        # set for a compression run's variants (tests/test_compression.py), None for a candidate
        "variant",
        "variant_of",
        "size_bytes",
        "parameters",
        "p50_ms",
        "p95_ms",
        "rows_per_second",
    }
    assert rows[0]["variant"] is None and rows[0]["size_bytes"] is None
    assert {r["init"] for r in rows} == {"scratch"}
    assert rows[0]["data_hash"] == digits.data_hash


def test_leaderboard_of_an_unknown_dataset_says_what_to_do(workspace):
    with pytest.raises(MlpipeError, match="run `mlpipe run --dataset nope` first"):
        leaderboard("nope", Settings(root=workspace))


def test_promote_and_rollback_from_the_command_line(own_registry):
    settings, _ = own_registry
    client = mlflow.MlflowClient(settings.tracking_uri)

    promoted = run_mlpipe(settings, "promote", "--dataset", "digits", "--version", "3")
    assert promoted.returncode == 0, promoted.stderr
    assert str(client.get_model_version_by_alias("digits", "champion").version) == "3"
    assert client.get_model_version("digits", "3").tags["promotion"].startswith("champion: promoted by hand")

    rolled = run_mlpipe(settings, "rollback", "--dataset", "digits")
    assert rolled.returncode == 0 and "moved back from v3 to v2" in rolled.stdout
    assert str(client.get_model_version_by_alias("digits", "champion").version) == "2"

    missing = run_mlpipe(settings, "promote", "--dataset", "digits", "--version", "9")
    assert missing.returncode == 1 and missing.stderr.strip() == "error: digits has no version 9"


def test_compare_draws_a_plot(registered, tmp_path):
    settings, _ = registered
    done = run_mlpipe(settings, "compare", "--dataset", "digits", "--plot", str(tmp_path / "runs.png"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "runs.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_each_registered_version_has_a_model_card(registered):
    """Markdown for MLflow's artifact view and JSON, in the version's run: what a reader of the
    registry needs before trusting the model."""
    import mlflow

    settings, results = registered
    client = mlflow.MlflowClient(settings.tracking_uri)
    version = client.get_model_version("digits", results[1].version)
    card = mlflow.artifacts.load_dict(f"runs:/{version.run_id}/card/model_card.json")
    text = mlflow.artifacts.load_text(f"runs:/{version.run_id}/card/model_card.md")

    assert card["model"] == {
        **card["model"],
        "name": "digits",
        "version": results[1].version,
        "family": "cnn",
        "init": "scratch",
    }
    assert card["data"]["version"] == version.tags["data_hash"] and sum(card["data"]["rows"].values()) == 1797
    assert len(card["data"]["class_balance"]) == 10 and set(card["metrics"]["per_class"]) >= {"0", "9"}
    assert card["metrics"]["test"]["test/accuracy"] > 0.5 and card["promotion"]["promoted"] is True
    assert card["metrics"]["selected_by"] == "val/accuracy" and "chosen on val/accuracy" in text
    assert card["lineage"]["git_sha"] == "abc123" and card["intended_use"].startswith("not stated")
    assert text.startswith(f"# Model card: digits v{results[1].version} (cnn)") and "## Promotion" in text
