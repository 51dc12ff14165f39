"""Each variant weighed against @champion on the same rows: accuracy on the validation and test rows,
what it costs on this CPU, and the non-inferiority verdict; then the one to register as @compact.

Only cost chooses among the variants that pass: the test rows judge (the gate) and never choose."""

from dataclasses import dataclass

import numpy as np

from tasks.compression.gate import Verdict, non_inferior
from tasks.compression.measure import Cost, measure
from tasks.compression.variants import Served
from tasks.infra.params import PromotionParams
from tasks.types import Dataset, Split


@dataclass
class Weighed:
    served: Served
    val_accuracy: float
    test_accuracy: float
    cost: Cost
    labels: np.ndarray  # its labels of the test rows, as strings: what the serving check expects
    correct: np.ndarray  # which test rows it got right
    verdict: Verdict | None = None  # None: the champion itself

    @property
    def name(self) -> str:
        return self.served.name

    def metrics(self) -> dict[str, float]:
        return {"val/accuracy": self.val_accuracy, "test/accuracy": self.test_accuracy, **self.cost.metrics()}


def weigh(served: Served, dataset: Dataset, split: Split) -> Weighed:
    """Accuracy and cost of one served model, on raw rows through its own preprocessing."""
    frame, columns = dataset.frame, dataset.feature_columns
    test = frame.iloc[split.test][columns]
    labels = served.labels(test).astype(str)
    truth = frame[dataset.label_column].to_numpy().astype(str)
    val_labels = served.labels(frame.iloc[split.val][columns]).astype(str)
    correct = labels == truth[split.test]
    cost = measure(lambda rows: served.model.predict(None, rows), test, served.size_bytes(), served.parameters)
    return Weighed(served, float((val_labels == truth[split.val]).mean()), float(correct.mean()), cost, labels, correct)


def judge(variant: Weighed, champion: Weighed, margin: float, policy: PromotionParams) -> Weighed:
    variant.verdict = non_inferior(variant.correct, champion.correct, margin, policy)
    return variant


def compact_choice(variants: list[Weighed], champion: Weighed) -> tuple[Weighed | None, str]:
    """(the variant to register, why): among the non-inferior variants that are smaller and faster
    per row than the champion, the fastest at batch 1, then the smallest."""
    passed = [v for v in variants if v.verdict and v.verdict.passed]
    if not passed:
        return None, "no variant is non-inferior to the champion on the test rows"
    compact = [
        v for v in passed if v.cost.size_bytes < champion.cost.size_bytes and v.cost.p50_ms < champion.cost.p50_ms
    ]
    if not compact:
        names = ", ".join(v.name for v in passed)
        return None, f"the non-inferior variants ({names}) are not both smaller and faster per row than the champion"
    best = min(compact, key=lambda v: (v.cost.p50_ms, v.cost.size_bytes))
    smaller = champion.cost.size_bytes / best.cost.size_bytes
    faster = champion.cost.p50_ms / best.cost.p50_ms
    why = f"{best.name}: {smaller:.1f}x smaller and {faster:.1f}x faster per row than the champion"
    return best, f"{why}; {best.verdict.reason}"
