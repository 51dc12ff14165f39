"""Non-inferiority: a variant is registered as @compact only when it loses at most `margin` of
test accuracy against the champion, with confidence. The same paired bootstrap on the same test
rows as the promotion gate, read the other way: the lower bound of (variant - champion) must be
above -margin. On fewer differing rows than a paired test can judge, the loss seen decides, and
the reason says so (a one-row loss on 360 rows is not a real loss of 0.28 points)."""

from dataclasses import dataclass

import numpy as np

from tasks.evaluation.statistics import MIN_DIFFERING_ROWS, paired_bootstrap, rows_judged
from tasks.infra.params import PromotionParams


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str
    accuracy: float
    delta: float
    interval: tuple[float, float]

    def tags(self) -> dict[str, str]:
        return {
            "compression.decision": "non-inferior" if self.passed else "inferior",
            "compression.delta": f"{self.delta:+.6f}",
            "compression.ci_low": f"{self.interval[0]:+.6f}",
            "compression.ci_high": f"{self.interval[1]:+.6f}",
        }


def non_inferior(
    variant_correct: np.ndarray, champion_correct: np.ndarray, margin: float, policy: PromotionParams | None = None
) -> Verdict:
    """`variant_correct` and `champion_correct` say which of the same test rows each got right."""
    if len(variant_correct) != len(champion_correct) or not len(variant_correct):
        raise ValueError("the variant and the champion must be scored on the same, non-empty test rows")
    policy = policy or PromotionParams()
    delta, interval = paired_bootstrap(
        variant_correct, champion_correct, policy.bootstrap_samples, policy.confidence, policy.seed
    )
    accuracy = float(variant_correct.mean())
    differ, judged = rows_judged(variant_correct, champion_correct)
    facts = (
        f"test/accuracy {accuracy:.4f} vs the champion's {float(champion_correct.mean()):.4f} on the same rows "
        f"({judged}), delta {delta:+.4f}, {policy.confidence:.0%} interval [{interval[0]:+.4f}, {interval[1]:+.4f}]"
    )
    if differ < MIN_DIFFERING_ROWS:  # the interval of a handful of rows says nothing: the loss itself decides
        if delta > -margin:
            why = f"{differ} differing rows are too few to show a loss, and the one seen is within {margin}"
            return Verdict(True, f"non-inferior: {facts}; {why}", accuracy, delta, interval)
        why = f"it loses more than {margin} on these rows (too few differ for an interval)"
        return Verdict(False, f"not registered: {facts}; {why}", accuracy, delta, interval)
    if interval[0] > -margin:
        return Verdict(True, f"non-inferior: {facts}; its lower bound is above -{margin}", accuracy, delta, interval)
    return Verdict(False, f"not registered: {facts}; it may lose more than {margin}", accuracy, delta, interval)
