"""A corpus of broken inputs, built from the real data sets: each must stop `mlpipe run` with
one clear error line, a non-zero exit code, no traceback and nothing registered."""

import csv
import io
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import SHARED_DATASETS, make_workspace

MLPIPE = str(Path(sys.executable).with_name("mlpipe"))


def _sms() -> pd.DataFrame:
    sms = pd.read_csv(SHARED_DATASETS / "sms_spam.tsv", sep="\t", quoting=csv.QUOTE_NONE)
    return sms.groupby("Label").head(60).reset_index(drop=True)


def _tsv(frame: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, sep="\t", index=False, quoting=csv.QUOTE_NONE, escapechar="\\")
    return buffer.getvalue().encode()


def _ecg_lines(part: str) -> list[str]:
    return (SHARED_DATASETS / f"ecg200_{part}.txt").read_text().splitlines()


def _spec(root: Path, **keys) -> str:
    path = root / "data" / "broken.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"name": "broken", **keys}))
    return str(path)


def _text(root: Path, content: bytes, **keys) -> str:
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "data" / "sms.tsv").write_bytes(content)
    spec = {"modality": "text", "format": "tsv", "train": "sms.tsv", "label_column": "Label", "text_column": "SMS"}
    return _spec(root, **(spec | keys))


def _text_with_test(root: Path, train: pd.DataFrame, test: pd.DataFrame) -> str:
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "data" / "sms.tsv").write_bytes(_tsv(train))
    (root / "data" / "sms_test.tsv").write_bytes(_tsv(test))
    keys = {"format": "tsv", "train": "sms.tsv", "test": "sms_test.tsv", "label_column": "Label", "text_column": "SMS"}
    return _spec(root, modality="text", **keys)


def _relabelled(line: str, label: str) -> str:
    return "  ".join([label, *line.split()[1:]])


def _sequences(root: Path, train: list[str], test: list[str] | None = None) -> str:
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "data" / "train.txt").write_text("\n".join(train) + "\n")
    (root / "data" / "test.txt").write_text("\n".join(test or _ecg_lines("test")) + "\n")
    return _spec(root, modality="sequence", format="ucr", train="train.txt", test="test.txt")


def _digits(root: Path, digits: pd.DataFrame, change) -> str:
    frame = digits.copy()
    change(frame)
    path = root / "data" / "digits" / "digits.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return "digits"


def _images(root: Path, digits: pd.DataFrame, odd: str) -> str:
    from PIL import Image

    folder = root / "data" / "images"
    for i, row in digits.groupby("label").head(8).iterrows():
        pixels = (row.drop("label").to_numpy(dtype=np.uint8).reshape(8, 8) * 15).astype(np.uint8)
        (folder / str(row["label"])).mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / str(row["label"]) / f"{i}.png")
    if odd == "wrong-size":
        Image.fromarray(np.zeros((10, 10), np.uint8)).save(folder / "3" / "big.png")
    if odd == "corrupt":
        (folder / "3" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really an image")
    return _spec(root, modality="image", format="image-folder", train="images")


def _set(column: str, row: int, value):
    def change(frame: pd.DataFrame) -> None:
        if isinstance(value, str) or value != value:  # a string or NaN changes the column's type
            frame[column] = frame[column].astype(str if isinstance(value, str) else "float64")
        frame.loc[row, column] = value

    return change


def _with_value(lines: list[str], row: int, position: int, value: str) -> list[str]:
    fields = lines[row].split()
    fields[position] = value
    return [*lines[:row], "  ".join(fields), *lines[row + 1 :]]


# kind -> (build the broken input in a project root; the error line must contain this)
CORRUPTIONS = {
    "nulls": (
        lambda root, d: _digits(root, d, _set("pixel_9", 4, np.nan)),
        "expect_column_values_to_not_be_null(pixel_9) 1 unexpected",
    ),
    "wrong dtype": (
        lambda root, d: _digits(root, d, _set("pixel_3", 0, "dark")),
        "numeric_features: 1 feature columns are not numeric, e.g. 'pixel_3' holds 'dark'",
    ),
    "out-of-range pixels": (
        lambda root, d: _digits(root, d, _set("pixel_10", 5, 99)),
        "expect_column_values_to_be_between(pixel_10) 1 unexpected, e.g. [99]",
    ),
    "unknown label": (
        lambda root, d: _digits(root, d, _set("label", 3, 12)),
        "expect_column_values_to_be_in_set(label) 1 unexpected, e.g. [12]",
    ),
    "single class": (
        lambda root, d: _text(root, _tsv(_sms().query("Label == 'ham'"))),
        "sms.tsv: a single class ('ham'); a classifier needs at least two",
    ),
    "empty file": (lambda root, d: _text(root, b""), "sms.tsv is empty"),
    "header only": (lambda root, d: _text(root, b"Label\tSMS\n"), "sms.tsv has no rows"),
    "truncated row": (
        lambda root, d: _text(root, _tsv(_sms()) + b"spam\n"),
        "expect_column_value_lengths_to_be_between(SMS) 1 unexpected",
    ),
    "duplicated rows": (
        lambda root, d: _text(root, _tsv(pd.concat([_sms()] * 2))),
        "duplicates: 121 duplicated rows (50.4% of 240), more than 10.0%",
    ),
    "train/test leakage": (
        lambda root, d: _sequences(root, _ecg_lines("train"), _ecg_lines("train")[:50]),
        "train_test_leakage: 50 test rows (100.0%) also occur in the training file",
    ),
    "bytes that are not UTF-8": (
        lambda root, d: _text(root, _tsv(_sms()) + b"spam\tWIN \xe9\xff\xfe now\n"),
        "sms.tsv cannot be read as tsv: 'utf-8' codec can't decode byte 0xe9",
    ),
    "a 1 MB text": (
        lambda root, d: _text(root, _tsv(_sms()) + b"ham\t" + b"lorem ipsum " * 87_382 + b"\n"),
        "text_lengths: longest text in 'SMS' has 1,048,584 characters (row 120), more than 10,000",
    ),
    "NaN in a sequence": (
        lambda root, d: _sequences(root, _with_value(_ecg_lines("train"), 7, 30, "nan")),
        "finite_values: 1 NaN and 0 infinite feature values in 1 rows (first at row 7, column 't29')",
    ),
    "infinity in a sequence": (
        lambda root, d: _sequences(root, _with_value(_ecg_lines("train"), 2, 10, "inf")),
        "finite_values: 0 NaN and 1 infinite feature values in 1 rows (first at row 2, column 't9')",
    ),
    "ragged sequence lengths": (
        lambda root, d: _sequences(root, [*_ecg_lines("train")[:5], _ecg_lines("train")[5] + " 0.5 0.7"]),
        "train.txt cannot be read as ucr: Error tokenizing data. C error: Expected 97 fields in line 6, saw 99",
    ),
    "image of the wrong size": (
        lambda root, d: _images(root, d, "wrong-size"),
        "big.png is 10x10, others are 8x8: set image_size",
    ),
    "corrupt image file": (lambda root, d: _images(root, d, "corrupt"), "corrupt.png is not a readable image"),
    "blank text": (
        lambda root, d: _text(root, _tsv(_sms()) + b"ham\t   \n"),
        "blank_texts: 1 texts in 'SMS' are empty or whitespace only (first at row 120)",
    ),
    "labels of mixed types": (
        lambda root, d: _text_with_test(root, _sms(), _sms().replace({"Label": {"ham": 0, "spam": 1}})),
        "label column 'Label' mixes types: 'ham' (str), 0 (number); write every label the same way",
    ),
    "a class only the test file has": (
        lambda root, d: _sequences(
            root, _ecg_lines("train"), [*_ecg_lines("test")[:20], _relabelled(_ecg_lines("test")[20], "3")]
        ),
        "test_only_classes: 1 classes occur only in the test file: 3 (1 test rows)",
    ),
    "fewer test rows than classes": (
        lambda root, d: _text(root, _tsv(_sms().assign(Label=[f"c{i % 10}" for i in range(120)])), test_fraction=0.05),
        "split: test_fraction 0.05 of 120 rows gives 6 test rows for 10 classes",
    ),
    "missing file": (
        lambda root, d: _spec(root, modality="text", format="tsv", train="gone.tsv", label_column="L", text_column="T"),
        "gone.tsv does not exist",
    ),
    "missing label column": (
        lambda root, d: _text(root, _tsv(_sms()), label_column="Category"),
        "sms.tsv has no label column 'Category'",
    ),
    "format that does not fit the modality": (
        lambda root, d: _text(root, _tsv(_sms()), format="ucr"),
        "format 'ucr' does not fit modality 'text'",
    ),
}


# Their messages are also checked in process (test_spec.py, test_validation.py): through the command
# line, in `make test-slow` only (about 8 s of `mlpipe run` each).
ALSO_CHECKED_IN_PROCESS = {
    "nulls", "out-of-range pixels", "unknown label", "single class", "empty file", "header only", "truncated row",
    "duplicated rows", "image of the wrong size", "missing file", "missing label column",
    "format that does not fit the modality",
}  # fmt: skip
KINDS = [pytest.param(k, marks=pytest.mark.slow) if k in ALSO_CHECKED_IN_PROCESS else k for k in CORRUPTIONS]


@pytest.fixture(scope="module")
def outcomes(request, prefect_api, digits, tmp_path_factory) -> dict[str, tuple[Path, subprocess.CompletedProcess]]:
    """The selected corruptions run through `mlpipe run`, two at a time, against the test Prefect server."""
    selected = [i.callspec.params["kind"] for i in request.session.items if i.module is request.module]

    def run(kind: str) -> tuple[Path, subprocess.CompletedProcess]:
        root = make_workspace(tmp_path_factory.mktemp("bad") / "project")
        build, _ = CORRUPTIONS[kind]
        dataset = build(root, digits.frame)
        env = {**os.environ, "MLPIPE_ROOT": str(root), "PREFECT_API_URL": prefect_api}
        args = [MLPIPE, "run", "--dataset", dataset, "--models", "cnn", "--max-epochs", "1"]
        return root, subprocess.run(args, capture_output=True, text=True, env=env, cwd=root, timeout=300)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(selected, pool.map(run, selected), strict=True))


@pytest.mark.parametrize("kind", KINDS)
def test_a_broken_input_stops_the_run_with_one_clear_line(kind, outcomes):
    root, done = outcomes[kind]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]

    assert done.returncode == 1, done.stderr[-2000:]
    assert len(errors) == 1, done.stderr[-2000:]
    assert CORRUPTIONS[kind][1] in errors[0]
    assert "Traceback" not in done.stderr + done.stdout
    print(f"{kind}: {errors[0]}")  # noqa: T201 - the messages for the closing note
    assert not (root / "mlflow" / "mlflow.db").exists()  # nothing logged, nothing registered
    assert not list((root / "outputs").glob("*/*/cnn"))  # nothing trained
