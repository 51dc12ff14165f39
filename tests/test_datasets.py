import re

import numpy as np
import pytest
import yaml
from conftest import SHARED_DATASETS

from tasks.data.loading import load
from tasks.data.splitting import split
from tasks.infra.errors import MlpipeError
from tasks.infra.settings import Settings


def test_digits_are_written_as_parquet_and_tracked_by_dvc(workspace):
    dataset = load("digits", Settings(root=workspace))

    assert (workspace / "data" / "digits" / "digits.parquet").exists()
    dvc_file = yaml.safe_load((workspace / "data" / "digits.dvc").read_text())
    assert dvc_file["outs"][0]["md5"] == f"{dataset.data_hash}.dir"
    assert re.fullmatch(r"[0-9a-f]{32}", dataset.data_hash)
    assert dataset.frame.shape == (1797, 65)
    assert dataset.classes == list(range(10))
    assert dataset.image_shape == (1, 8, 8)


def test_data_hash_is_stable_and_changes_with_the_data(workspace):
    settings = Settings(root=workspace)
    first = load("digits", settings).data_hash
    assert load("digits", settings).data_hash == first

    table = workspace / "data" / "digits" / "digits.parquet"
    frame = load("digits", settings).frame.head(1000)
    frame.to_parquet(table, index=False)
    changed = load("digits", settings)
    assert changed.data_hash != first
    assert len(changed.frame) == 1000


def test_unknown_dataset_is_named_in_the_error(workspace):
    with pytest.raises(MlpipeError, match="unknown data set 'nope'"):
        load("nope", Settings(root=workspace))


def test_a_folder_without_dvc_is_refused(tmp_path):
    with pytest.raises(MlpipeError, match="not a DVC repository"):
        load("digits", Settings(root=tmp_path))


def test_split_is_stratified_disjoint_and_keeps_the_test_rows_across_seeds():
    labels = np.repeat(np.arange(4), 50)
    a = split(labels, 0.2, 0.25, split_seed=0, seed=1)
    b = split(labels, 0.2, 0.25, split_seed=0, seed=2)

    assert len(a.test) == 40 and len(a.val) == 40 and len(a.train) == 120
    assert set(a.train).isdisjoint(a.val) and set(a.train).isdisjoint(a.test) and set(a.val).isdisjoint(a.test)
    assert np.bincount(labels[a.test]).tolist() == [10, 10, 10, 10]
    np.testing.assert_array_equal(a.test, b.test)
    assert not np.array_equal(a.val, b.val)


def test_the_tokenizer_is_the_same_in_every_process():
    """A seeded run must be repeatable (mlpipe reproduce): the WordPiece trainer alone is not."""
    import subprocess
    import sys

    script = (
        "import csv, hashlib, pandas as pd\n"
        "from tasks.training.features import train_tokenizer\n"
        f"sms = pd.read_csv({str(SHARED_DATASETS / 'sms_spam.tsv')!r}, sep='\\t', quoting=csv.QUOTE_NONE).head(500)\n"
        "for size, lower in ((300, False), (2000, True)):\n"
        "    info = train_tokenizer(sms['SMS'].tolist(), vocab_size=size, lowercase=lower)\n"
        "    print(hashlib.md5(info['tokenizer'].encode()).hexdigest())\n"
    )
    runs = [
        subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True) for _ in range(3)
    ]
    assert len({run.stdout for run in runs}) == 1, [run.stdout for run in runs]
