"""Build a starting expectation suite from the data itself (GX 1.x has no profiler any more).

The result is plain GX JSON in expectations/<dataset>.json: a person reviews it, edits the
bounds and commits it; `mlpipe validate` and the pipeline then hold every new version to it.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd

from tasks.infra.files import write_atomic
from tasks.types import Dataset, plain

MARGIN = 0.1  # bounds are widened by this share of the observed range, so normal variation passes
NUMERIC_TYPES = [f"{kind}{bits}" for kind in ("int", "uint") for bits in (8, 16, 32, 64)] + ["float32", "float64"]


def build_suite(dataset: Dataset) -> dict:
    frame, label = dataset.frame, dataset.label_column
    rows = len(frame)
    expectations = [
        _expect("table_columns_to_match_set", column_set=[*dataset.feature_columns, label], exact_match=True),
        _expect("table_row_count_to_be_between", min_value=max(rows // 2, 1), max_value=rows * 10),
        _expect("column_values_to_not_be_null", column=label),
        _expect("column_values_to_be_in_set", column=label, value_set=plain(sorted(frame[label].unique()))),
        _class_proportions(frame[label]),
    ]
    if dataset.modality == "text":
        column = dataset.feature_columns[0]
        lengths = frame[column].str.len()
        expectations += [
            _expect("column_values_to_not_be_null", column=column),
            _expect("column_values_to_be_of_type", column=column, type_="str"),
            _expect(
                "column_value_lengths_to_be_between",
                column=column,
                min_value=1,
                max_value=int(np.ceil(lengths.max() * (1 + MARGIN))),
            ),
        ]
    elif dataset.modality == "audio":  # bounds on each clip's figures, not on 10,000s of sample columns
        from tasks.data.sound_files import CLIP_COLUMNS

        kept = [c for c in frame.columns if c not in set(dataset.feature_columns)]  # not s0..s{N-1}
        expectations[0] = _expect("table_columns_to_match_set", column_set=kept, exact_match=False)
        for column in CLIP_COLUMNS:
            expectations += _numeric_column(dataset, frame[column])
    else:
        for column in dataset.feature_columns:
            expectations += _numeric_column(dataset, frame[column])
    return {
        "name": dataset.name,
        "expectations": expectations,
        "meta": {
            "notes": f"Built by `mlpipe validate --init-suite` from {rows} rows of data version {dataset.data_hash}; "
            "review and edit the bounds, then commit this file."
        },
    }


def write_suite(suite: dict, path: Path) -> Path:
    return write_atomic(path, json.dumps(suite, indent=1) + "\n")


def _numeric_column(dataset: Dataset, values: pd.Series) -> list[dict]:
    column = values.name
    checks = [
        _expect("column_values_to_not_be_null", column=column),
        _expect("column_values_to_be_in_type_list", column=column, type_list=NUMERIC_TYPES),
    ]
    low, high = float(values.min()), float(values.max())
    if dataset.modality == "image":
        # Pixels have hard bounds: 0 up to the format's maximum, never a margin beyond it.
        top = 255.0 if high > 1 and high <= 255 else max(high, 1.0)
        checks.append(_expect("column_values_to_be_between", column=column, min_value=0, max_value=plain(top)))
    else:
        pad = (high - low) * MARGIN or abs(high) * MARGIN or 1.0
        checks.append(_expect("column_values_to_be_between", column=column, min_value=low - pad, max_value=high + pad))
    return checks


def _class_proportions(labels: pd.Series) -> dict:
    """KL divergence of the label distribution from the observed one: catches a class vanishing
    or swamping the others, while ordinary variation in proportions passes."""
    shares = labels.value_counts(normalize=True).sort_index()
    return _expect(
        "column_kl_divergence_to_be_less_than",
        column=labels.name,
        partition_object={"values": plain(shares.index.tolist()), "weights": shares.round(6).tolist()},
        threshold=0.1,
    )


def _expect(kind: str, **kwargs) -> dict:
    return {"type": f"expect_{kind}", "kwargs": kwargs}
