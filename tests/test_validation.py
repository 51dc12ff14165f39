import json
import re
from dataclasses import replace

import numpy as np
import pytest
from conftest import validate

from tasks.infra.errors import MlpipeError, ValidationFailed
from tasks.infra.settings import CODE_ROOT
from tasks.validation.tasks import validate_dataset

SUITE = CODE_ROOT / "expectations" / "digits.json"


def test_digits_pass_their_suite(digits, tmp_path):
    report = validate(digits.frame, "digits", SUITE, tmp_path / "validation.json")

    assert report.success, report.summary()
    assert report.evaluated == 2 + 2 + 64 * 2
    saved = json.loads((tmp_path / "validation.json").read_text())
    assert saved["success"] is True


def test_broken_digits_name_each_failed_expectation(digits, tmp_path):
    frame = digits.frame.copy()
    frame.loc[0, "pixel_5"] = 17
    frame.loc[1, "label"] = 11
    frame["pixel_9"] = frame["pixel_9"].astype("float64")
    frame.loc[2, "pixel_9"] = np.nan

    report = validate(frame, "digits", SUITE, tmp_path / "validation.json")

    assert not report.success
    text = report.summary()
    assert "expect_column_values_to_be_between(pixel_5) 1 unexpected, e.g. [17]" in text
    assert "expect_column_values_to_be_in_set(label) 1 unexpected, e.g. [11]" in text
    assert "expect_column_values_to_not_be_null(pixel_9)" in text
    assert len(report.failures) == 3


def test_a_missing_column_fails_the_column_set(digits, tmp_path):
    report = validate(digits.frame.drop(columns=["pixel_63"]), "digits", SUITE, tmp_path / "v.json")

    assert not report.success
    assert any(f.startswith("expect_table_columns_to_match_set") for f in report.failures)


def test_the_task_raises_so_the_flow_stops(digits, workspace, prefect_api, tmp_path):
    frame = digits.frame.copy()
    frame.loc[0, "pixel_5"] = 99
    expected = r"validation failed for digits: 1 of 137 expectations and checks failed: expect_column_values_to_be_betw"
    with pytest.raises(ValidationFailed, match=expected):
        validate_dataset.fn(replace(digits, frame=frame), tmp_path)
    assert (tmp_path / "validation.json").exists()
    docs = (tmp_path / "data_docs.html").read_text()
    assert 'Validation of <code>digits</code>: <span class="failed">failed</span>' in docs
    assert "values must be greater than or equal to" in docs  # GX's sections
    # Self-contained: nothing to fetch (offline, a CDN's icons were blank), and mlpipe's checks beside GX's.
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", docs) and "<script" not in docs
    assert "<td>duplicates</td><td>0 duplicated rows" in docs and "fa-times text-danger" in docs


def test_a_malformed_suite_is_a_clear_error(digits, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "digits", "expectations": [{"type": "expect_nothing", "kwargs": {}}]}))
    with pytest.raises(MlpipeError, match="bad.json is malformed"):
        validate(digits.frame, "digits", bad, tmp_path / "v.json")
