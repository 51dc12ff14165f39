"""Non-inferiority: a variant is registered as @compact only when it loses at most `margin` of
test accuracy against the champion, with confidence. The same paired bootstrap on the same test
rows as the promotion gate, read the other way: the lower bound of (variant - champion) must be
above -margin."""

from dataclasses import dataclass

import numpy as np

from tasks.infra.params import PromotionParams
from tasks.registry.promotion import paired_bootstrap


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
    facts = (
        f"test/accuracy {accuracy:.4f} vs the champion's {float(champion_correct.mean()):.4f} on the same rows, "
        f"delta {delta:+.4f}, {policy.confidence:.0%} interval [{interval[0]:+.4f}, {interval[1]:+.4f}]"
    )
    if interval[0] > -margin:
        return Verdict(True, f"non-inferior: {facts}; its lower bound is above -{margin}", accuracy, delta, interval)
    return Verdict(False, f"not registered: {facts}; it may lose more than {margin}", accuracy, delta, interval)
