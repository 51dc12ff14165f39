"""The texts an encoder is pretrained on: a text data set's training and validation rows, never its
test rows, and unlabelled text files, one text a line."""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tasks.infra.errors import MlpipeError
from tasks.types import Dataset, Split


@dataclass
class Corpus:
    texts: list[str]  # unique, stripped, non-blank; in the order they were first read
    dataset_rows: int  # training and validation rows read from the data set
    file_lines: dict[str, int] = field(default_factory=dict)  # non-blank lines read from each file
    dropped_as_test: int = 0  # texts equal to a test row's, left out wherever they came from


def text_files(paths: list[str], root: Path) -> list[Path]:
    """The files `--texts` names (relative: to the project root, as a data set's spec path is),
    or one line naming the first that is missing."""
    found = []
    for given in paths:
        path = Path(given).expanduser()
        path = path if path.is_absolute() else root / path
        if not path.is_file():
            raise MlpipeError(f"no text file {given!r} (looked for {path})")
        found.append(path)
    return found


def build_corpus(dataset: Dataset, split: Split, files: list[Path]) -> Corpus:
    """The data set's training and validation texts, then each file's lines. A text equal to a test
    row's is left out, from the files too: the encoder must not have read what the test rows judge."""
    if dataset.modality != "text":
        raise MlpipeError(f"`mlpipe pretrain` needs a text data set; {dataset.name} is {dataset.modality}")
    column = dataset.frame[dataset.feature_columns[0]]
    rows = np.sort(np.concatenate([split.train, split.val]))
    texts = _cleaned(column.iloc[rows])
    lines = {}
    for path in files:
        found = _cleaned(_lines(path))
        lines[str(path)] = len(found)
        texts += found
    test = set(_cleaned(column.iloc[split.test]))
    unique = list(dict.fromkeys(texts))
    kept = [text for text in unique if text not in test]
    if not kept:
        raise MlpipeError(f"{dataset.name}: no text to pretrain on outside the test rows")
    return Corpus(kept, len(rows), lines, len(unique) - len(kept))


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise MlpipeError(f"no text file {str(path)!r}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise MlpipeError(f"cannot read text file {str(path)!r}: {error}") from None


def _cleaned(values) -> list[str]:
    """Stripped texts, without the blank and the missing ones (NaN in a table)."""
    import pandas as pd

    return [text for value in values if not pd.isna(value) and (text := str(value).strip())]
