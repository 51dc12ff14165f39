"""Drift of new data against the profile of the champion's data."""

from dataclasses import replace

import numpy as np
import pandas as pd

from tasks.infra.params import DriftParams
from tasks.validation.drift import compare, profile


def _failed(checks) -> dict[str, str]:
    return {c.name: c.message for c in checks if not c.success}


def test_another_sample_of_the_same_data_does_not_drift(digits):
    """Two random halves of digits differ by chance (every figure above 0) and stay within every limit."""
    order = np.random.default_rng(0).permutation(len(digits.frame))
    half = len(order) // 2
    first, second = (replace(digits, frame=digits.frame.iloc[rows]) for rows in (order[:half], order[half:]))

    checks = compare(profile(first), second)

    assert _failed(checks) == {}
    figures = {c.name: c.observed for c in checks}
    assert figures["drift.feature_psi"] > 0 and figures["drift.label_shift"] > 0, figures


def test_a_brighter_image_set_drifts_in_its_features(digits):
    frame = digits.frame.copy()
    pixels = digits.feature_columns
    frame[pixels] = np.clip(frame[pixels] + 4, 0, 16)

    failed = _failed(compare(profile(digits), replace(digits, frame=frame)))

    assert set(failed) == {"drift.feature_psi"}
    assert failed["drift.feature_psi"].startswith("largest PSI ")


def test_a_vanishing_class_shifts_the_label_proportions(digits):
    frame = digits.frame[digits.frame["label"] != 3]

    failed = _failed(compare(profile(digits), replace(digits, frame=frame), DriftParams(label_shift=0.05)))

    assert "drift.label_shift" in failed
    assert "class '3' share moved -10.2%" in failed["drift.label_shift"]


def test_new_words_and_longer_texts_drift(tmp_path):
    from tasks.types import Dataset

    def texts(items: list[str]) -> Dataset:
        frame = pd.DataFrame({"text": items, "label": ["a", "b"] * (len(items) // 2)})
        return Dataset("t", "text", frame, "label", ["text"], tmp_path, data_hash=str(len(items)))

    old = texts(["see you at lunch", "call me later today"] * 50)
    new = texts(["quantum entanglement observed in superconducting qubits at millikelvin temperatures"] * 100)

    failed = _failed(compare(profile(old), new))

    assert {"drift.oov_rate", "drift.text_length_psi"} <= set(failed)
    assert failed["drift.oov_rate"].startswith("88.9% of the words are new")  # all but "at"
