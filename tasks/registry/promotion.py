"""Who serves: the champion/challenger gate, the serving check, and the alias history.

A new version becomes @champion only when there is none, or when it beats the current champion
re-scored on the same test rows: the lower bound of a paired bootstrap interval of the gain must
exceed `min_delta`. The champion is re-scored, and the new version checked, as a model server
would load them: in a fresh process, from their registered artifacts and code only. A run that
trained past failed validation (--warn-only) is registered for inspection, never crowned. Every
move is appended to the alias history (tasks/registry/aliases.py).
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tasks.evaluation.statistics import MIN_DIFFERING_ROWS, paired_bootstrap, rows_judged
from tasks.infra.errors import MlpipeError, redact
from tasks.infra.params import PromotionParams
from tasks.infra.retrying import TransientError, is_transient
from tasks.registry import lifecycle
from tasks.registry.lifecycle import State
from tasks.registry.serving import FreshProcess, serving_check


@dataclass
class Decision:
    promote: bool
    reason: str  # one sentence, stored as the `promotion` tag
    score: float  # the new version's test accuracy
    champion_version: str | None = None
    champion_score: float | None = None  # the champion re-scored on the same test rows
    delta: float | None = None
    interval: tuple[float, float] | None = None  # bootstrap interval of the delta

    def tags(self) -> dict[str, str]:
        """The decision as a version's tags (the contract in DESIGN.md); the description shows them as a table."""
        tags = {
            "promotion": self.reason,
            "promotion.decision": "promoted" if self.promote else "not promoted",
            "promotion.challenger_accuracy": f"{self.score:.6f}",
        }
        if self.champion_version is not None:
            tags["promotion.champion_version"] = str(self.champion_version)
        if self.champion_score is not None:  # the delta is challenger - champion: no tag of its own
            tags |= {
                "promotion.champion_accuracy": f"{self.champion_score:.6f}",
                "promotion.ci_low": f"{self.interval[0]:+.6f}",
                "promotion.ci_high": f"{self.interval[1]:+.6f}",
            }
        return tags

    @classmethod
    def recorded(cls, tags: dict[str, str], score: float, promoted: bool) -> "Decision":
        """The decision a version's tags record (the inverse of `tags`); `promoted`: @champion is it."""
        decision = cls(promoted, tags["promotion"], score, tags.get("promotion.champion_version"))
        if "promotion.champion_accuracy" in tags:
            decision.champion_score = float(tags["promotion.champion_accuracy"])
            decision.delta = score - decision.champion_score
            decision.interval = (float(tags["promotion.ci_low"]), float(tags["promotion.ci_high"]))
        return decision

    def markdown(self, name: str, version: str) -> str:
        lines = [f"# Promotion of `{name}` v{version}: {'promoted' if self.promote else 'not promoted'}", ""]
        lines += [self.reason, "", "| | value |", "|---|---|", f"| challenger v{version} accuracy | {self.score:.4f} |"]
        if self.champion_score is not None:
            lines += [
                f"| champion v{self.champion_version} accuracy (re-scored on the same test rows) | "
                f"{self.champion_score:.4f} |",
                f"| delta | {self.delta:+.4f} |",
                f"| bootstrap interval of the delta | [{self.interval[0]:+.4f}, {self.interval[1]:+.4f}] |",
            ]
        return "\n".join(lines)


def decide(
    new_correct: np.ndarray,
    champion_version: str | None,
    champion_correct: np.ndarray | None,
    policy: PromotionParams | None = None,
    warn_only: bool = False,
    champion_error: str | None = None,
) -> Decision:
    """Whether the new version takes @champion: `new_correct` and `champion_correct` say which of
    the same test rows each classifies right; `champion_error` why the champion could not be scored."""
    policy = policy or PromotionParams()
    score = float(new_correct.mean())
    if warn_only:
        reason = "not promoted: trained with --warn-only after validation failed; registered for inspection only"
        return Decision(False, reason, score, champion_version)
    if champion_version is None:
        return Decision(True, f"champion: first version (test/accuracy {score:.4f})", score)
    if champion_correct is None:
        why = champion_error or "unknown error"
        reason = f"not promoted: champion v{champion_version} could not be re-scored: {why}"
        return Decision(False, reason, score, champion_version)
    delta, interval = paired_bootstrap(
        new_correct, champion_correct, policy.bootstrap_samples, policy.confidence, policy.seed
    )
    old, min_delta = float(champion_correct.mean()), policy.min_delta
    differ, judged = rows_judged(new_correct, champion_correct)
    facts = (
        f"test/accuracy {score:.4f} vs champion v{champion_version}'s {old:.4f} on the same rows ({judged}), "
        f"delta {delta:+.4f}, {policy.confidence:.0%} interval [{interval[0]:+.4f}, {interval[1]:+.4f}]"
    )
    if delta <= min_delta:
        reason = f"not promoted: {facts}; the gain is not above min_delta {min_delta}"
        return Decision(False, reason, score, champion_version, old, delta, interval)
    if differ < MIN_DIFFERING_ROWS:
        reason = f"not promoted: {facts}; {differ} differing rows are too few to tell a gain from chance"
        return Decision(False, reason, score, champion_version, old, delta, interval)
    if interval[0] <= min_delta:
        reason = f"not promoted: {facts}; its lower bound is not above min_delta {min_delta}: the gain may be noise"
        return Decision(False, reason, score, champion_version, old, delta, interval)
    return Decision(True, f"champion: {facts}", score, champion_version, old, delta, interval)


def champion_correctness(
    client,
    tracking_uri: str,
    name: str,
    frame: pd.DataFrame,
    labels: pd.Series,
    process: "FreshProcess",
) -> tuple[str | None, np.ndarray | None, str | None]:
    """(champion version, which of these rows it classifies right, why it could not be scored):
    the champion re-scored in `process`, a fresh one, with its own registered code. (None, None,
    None) when there is no champion. A store that may answer next time raises TransientError.
    (A version that is @champion itself is ALIAS_MOVED or DECIDED: never re-scored against itself.)"""
    from mlflow.exceptions import MlflowException

    try:
        champion = client.get_model_version_by_alias(name, "champion")
    except MlflowException as error:
        if is_transient(error):
            raise  # an unreachable store is not "no champion": the task tries again
        return None, None, None
    try:
        predicted = process.predict(tracking_uri, name, str(champion.version), frame)
    except TransientError:
        raise
    except MlpipeError as error:
        return str(champion.version), None, redact(str(error))  # stored in tags: no password
    return str(champion.version), predicted == labels.to_numpy().astype(str), None


def decide_promotion(client, settings, dataset, split, version: str, best_eval, policy, warn_only: bool, processes):
    """The gate, from REGISTERED to DECIDED (tasks/registry/lifecycle.py): @challenger, then
    @champion if the version beats the champion re-scored on the same test rows and serves;
    `processes` are two FreshProcess: the champion's and the version's. A warn-only run is neither:
    it is registered for inspection, and its tags say why."""
    from tasks.registry.promotion_lock import promotion_lock

    name, correct = dataset.name, best_eval.predictions == dataset.class_indices(split.test)
    if warn_only:
        return lifecycle.record_decision(client, name, version, decide(correct, None, None, warn_only=True))
    with promotion_lock(settings, name):
        state = lifecycle.version_state(client, name, version)  # again: another run may have moved it
        if state is State.ALIAS_MOVED:
            reason, previous = lifecycle.finish_move(client, name, version)
            return Decision(True, reason, float(correct.mean()), previous)
        if state is State.DECIDED:  # an identical run decided while this one waited for the lock
            promoted = lifecycle.champion_of(client, name) == version
            return Decision.recorded(client.get_model_version(name, version).tags, float(correct.mean()), promoted)
        client.set_registered_model_alias(name, lifecycle.CHALLENGER, version)
        decision = _judged(client, settings, dataset, split, version, best_eval, policy, processes, correct)
        return lifecycle.record_decision(client, name, version, decision)


def _judged(client, settings, dataset, split, version, best_eval, policy, processes, correct) -> Decision:
    """The decision on the test rows, the champion re-scored in its fresh process; a promotion
    stands only when the version then serves in its own, with the labels it was evaluated with."""
    name, (champion_process, challenger_process) = dataset.name, processes
    test_rows = dataset.frame.iloc[split.test]
    features, labels = test_rows[dataset.feature_columns], test_rows[dataset.label_column]
    if dataset.audio:  # the sound files: the champion may read them at another rate or length
        features = test_rows[[dataset.audio["path_column"]]]
    champion, champion_correct, error = champion_correctness(
        client, settings.tracking_uri, name, features, labels, champion_process
    )
    decision = decide(correct, champion, champion_correct, policy, champion_error=error)
    if not decision.promote:
        return decision
    evaluated = np.asarray(dataset.classes)[best_eval.predictions]
    try:
        serving_check(challenger_process, settings.tracking_uri, name, version, features, evaluated)
    except TransientError:
        raise
    except MlpipeError as failed:
        return Decision(False, f"not promoted: {redact(str(failed))}", decision.score, champion)
    return decision
