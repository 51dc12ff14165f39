"""Small data: a run with few validation rows chooses by k-fold cross-validation over the
training and validation rows, then refits the candidates on all of them; the test rows are in
no fold."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import SHARED_DATASETS

from tasks.data.loading import load_spec
from tasks.data.splitting import split_parts
from tasks.evaluation.cross_validation import make_folds, refit_split, uses_cv
from tasks.infra.errors import MlpipeError
from tasks.infra.params import SplitParams
from tasks.infra.settings import Settings

MLPIPE = str(Path(sys.executable).with_name("mlpipe"))
SPLIT = SplitParams(test_fraction=0.2, val_fraction=0.1, seed=0)


@pytest.fixture(scope="module")
def ecg(tmp_path_factory):
    """ECG200's training file as a whole data set: 100 series, 20 test rows, 8 validation rows."""
    folder = tmp_path_factory.mktemp("ecg")
    spec = {"name": "ecg", "modality": "sequence", "format": "ucr", "train": str(SHARED_DATASETS / "ecg200_train.txt")}
    (folder / "ecg.yaml").write_text(yaml.safe_dump(spec))
    return load_spec(folder / "ecg.yaml")


def test_folds_hold_every_training_and_validation_row_once_and_no_test_row(ecg):
    parts = split_parts(ecg, SPLIT, seed=7)
    assert uses_cv(parts, cv_below=100) and not uses_cv(parts, cv_below=len(parts.val))

    folds = make_folds(ecg, parts, folds=5, seed=7)

    held_out = np.concatenate([f.val for f in folds.splits])
    assert sorted(held_out) == sorted(np.concatenate([parts.train, parts.val]))  # each row held out once
    for fold in folds.splits:
        assert not set(fold.val) & set(fold.train)
        assert not (set(fold.train) | set(fold.val)) & set(parts.test)  # the test rows judge, never choose
        assert np.array_equal(fold.test, parts.test)
        assert set(ecg.class_indices(fold.val)) == {0, 1}  # stratified: both classes in every fold
    assert folds.selected_by == "cv5/accuracy" and folds.note == ""
    again, other = make_folds(ecg, parts, 5, seed=7), make_folds(ecg, parts, 5, seed=8)
    assert all(np.array_equal(a.val, b.val) for a, b in zip(folds.splits, again.splits, strict=True))
    assert not all(np.array_equal(a.val, b.val) for a, b in zip(folds.splits, other.splits, strict=True))
    refit = refit_split(parts)
    assert len(refit.val) == 0 and np.array_equal(refit.train, np.sort(np.concatenate([parts.train, parts.val])))


def test_a_class_with_fewer_rows_than_folds_gives_fewer_folds_and_says_why(ecg):
    frame = ecg.frame.copy()
    rare = frame.index[frame[ecg.label_column] == frame[ecg.label_column].iloc[0]][:4]
    frame.loc[rare, ecg.label_column] = 99  # a third class of 4 rows: 3 of them outside the test part
    small = type(ecg)(**{**ecg.__dict__, "frame": frame})
    parts = split_parts(small, SPLIT, seed=0)

    folds = make_folds(small, parts, folds=5, seed=0)

    rows = int((frame[ecg.label_column].iloc[np.concatenate([parts.train, parts.val])] == 99).sum())
    assert len(folds.splits) == rows < 5 and folds.selected_by == f"cv{rows}/accuracy"
    assert folds.note == f"{rows} folds, not 5: class 99 has {rows} training and validation rows"
    with pytest.raises(MlpipeError, match="each fold needs a row of every class"):
        make_folds(small, _one_rare(small, parts), 5, 0)


def _one_rare(dataset, parts):
    """The split with a single training or validation row of the rare class left."""
    labels = dataset.frame[dataset.label_column].to_numpy()
    rare = [p for p in np.concatenate([parts.train, parts.val]) if labels[p] == 99]
    return type(parts)(np.setdiff1d(parts.train, rare[1:]), np.setdiff1d(parts.val, rare[1:]), parts.test)


def _fold_dirs(root: Path, name: str, family: str) -> list[Path]:
    """A family's fold fits (they validated on rows) beside its refit (no validation curve)."""
    dirs = sorted((root / "outputs" / name / "training").glob(f"{family}-*"))
    return [d for d in dirs if "val/loss" in json.loads((d / "history.json").read_text())[0]]


def test_a_small_data_set_is_chosen_by_cross_validation_and_the_refit_is_registered(prefect_api, workspace, ecg):
    from test_caching import _task_states

    from flows.training import training_pipeline

    state = training_pipeline(dataset=str(ecg.spec_path), models=["cnn"], max_epochs=6, seed=1, return_state=True)
    registration, states = state.result(), _task_states(state)

    # Five folds and the refit, for the network, the baseline and MiniRocket.
    assert states["train_model"] == ["Completed"] * 6 and states["train_baseline"] == ["Completed"] * 12
    client = mlflow.MlflowClient(Settings(root=workspace).tracking_uri)
    experiment = client.get_experiment_by_name("ecg").experiment_id
    (cnn,) = client.search_runs([experiment], "tags.family = 'cnn'")
    assert cnn.data.tags["selected_by"] == "cv5/accuracy"
    folds = [m.value for m in client.get_metric_history(cnn.info.run_id, "cv/accuracy")]
    assert len(folds) == 5 and cnn.data.metrics["val/accuracy_sd"] == pytest.approx(np.std(folds, ddof=1), abs=1e-5)
    # The refit trained for the median of the folds' best epochs, on all 80 training and validation rows.
    best_epochs = [
        min(json.loads((d / "history.json").read_text()), key=lambda e: e["val/loss"])["epoch"] + 1
        for d in _fold_dirs(workspace, "ecg", "cnn")
    ]
    assert len(best_epochs) == 5
    config = mlflow.artifacts.load_dict(f"runs:/{cnn.info.run_id}/train_config.json")
    assert config["refit_epochs"] == int(np.ceil(np.median(best_epochs)))
    assert int(cnn.data.params["refit_epochs"]) == config["refit_epochs"]
    assert len(client.get_metric_history(cnn.info.run_id, "epoch/train_loss")) == config["refit_epochs"]
    parent = client.get_run(cnn.data.tags["mlflow.parentRunId"])
    assert parent.data.tags["selected_by"] == "cv5/accuracy" and registration.version == "1"
    compared = subprocess.run(
        [MLPIPE, "compare", "--dataset", "ecg", "--format", "json"], capture_output=True, text=True, check=True
    )
    rows = {row["family"]: row for row in json.loads(compared.stdout)}
    assert rows["cnn"]["selected_by"] == "cv5/accuracy" and rows["cnn"]["val_accuracy_sd"] is not None

    again = training_pipeline(dataset=str(ecg.spec_path), models=["cnn"], max_epochs=6, seed=1, return_state=True)

    assert set(_task_states(again)["train_model"]) == {"Cached"} and again.result().reused


def test_a_run_killed_in_the_third_fold_resumes_there(prefect_api, workspace, ecg):
    args = [MLPIPE, "run", "--dataset", str(ecg.spec_path), "--models", "rnn", "--max-epochs", "6", "--seed", "2"]
    env = {**os.environ, "MLPIPE_ROOT": str(workspace)}
    first = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 300
    while not _third_fold_under_way(workspace):
        assert first.poll() is None, f"the run ended before it could be killed: {first.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline, "the third fold did not start within 300 s"
        time.sleep(0.1)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    done = {d: (d / "result.json").stat().st_mtime for d in _fits(workspace) if (d / "result.json").exists()}
    assert len(done) == 2  # the first two folds finished

    second = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)

    assert second.returncode == 0, second.stderr[-2000:]
    assert {d: (d / "result.json").stat().st_mtime for d in done} == done  # not trained again
    assert "resuming rnn from epoch" in second.stderr  # the third fold went on from its last checkpoint
    assert len(_fits(workspace)) == 6


def _fits(root: Path) -> list[Path]:
    return sorted((root / "outputs" / "ecg" / "training").glob("rnn-*"))


def _third_fold_under_way(root: Path) -> bool:
    """Two folds finished and the third has a saved epoch."""
    fits = _fits(root)
    finished = [d for d in fits if (d / "result.json").exists()]
    return len(finished) == 2 and any((d / "last.ckpt").exists() for d in fits if d not in finished)


def test_a_refit_trains_its_epochs_without_validation_rows_and_keeps_the_last(ecg, tmp_path):
    """A refit has no validation rows: it trains its epochs and keeps the last weights."""
    from dataclasses import replace

    from tasks.infra.params import load_params
    from tasks.training.config import train_config
    from tasks.training.network import train

    parts = refit_split(split_parts(ecg, SPLIT, seed=0))
    config = replace(train_config(load_params(Settings(root=tmp_path)), "sequence", "cnn", 0), refit_epochs=3)

    model = train(ecg, parts, config, tmp_path / "refit")

    assert model.epochs_run == 3 and model.best_epoch == 2 and len(model.history) == 3
    assert "val/loss" not in model.history[-1] and model.predict_proba(pd.DataFrame(ecg.frame.iloc[:2])).shape == (2, 2)


def test_tuning_a_small_data_set_judges_every_trial_on_the_folds_of_its_runs(prefect_api, workspace, ecg):
    from flows.tuning import tuning_pipeline

    summaries = tuning_pipeline(dataset=str(ecg.spec_path), models=["rnn"], trials=2, max_epochs=2)

    # Search and check rows halve the 80 training and validation rows, each predicted by the fold
    # that held it out, not the 8 validation rows a run of this set no longer chooses on.
    rows = summaries["rnn"]["rows"]
    assert rows["search"] + rows["check"] == 80 and abs(rows["search"] - rows["check"]) <= 1
    import optuna

    from tasks.tuning.storage import open_storage

    (study,) = optuna.get_all_study_summaries(open_storage(Settings(root=workspace)))
    defaults = optuna.load_study(study_name=study.study_name, storage=open_storage(Settings(root=workspace))).trials[0]
    assert defaults.user_attrs["check/correct"]["rows"] == rows["check"]  # what the verdict judges on


def test_a_fold_keeps_its_held_out_probabilities_of_every_epoch(ecg, tmp_path):
    """A fold's network records its validation rows' probabilities after each epoch: the
    choice scores it at the epoch its refit will stop at (cross_validation._out_of_fold)."""
    from dataclasses import replace

    from tasks.infra.params import load_params
    from tasks.training.config import train_config
    from tasks.training.network import train

    fold = make_folds(ecg, split_parts(ecg, SPLIT, seed=0), 5, seed=0).splits[1]
    config = replace(train_config(load_params(Settings(root=tmp_path)), "sequence", "cnn", 0), max_epochs=4)

    model = train(ecg, fold, config, tmp_path / "fold")

    assert model.held_out.shape == (model.epochs_run, len(fold.val), 2)
    best = model.predict_proba(ecg.frame.iloc[fold.val])  # the kept weights: those of the best epoch
    np.testing.assert_allclose(model.held_out[model.best_epoch], best, atol=1e-5)
    assert not np.allclose(model.held_out[0], model.held_out[-1])  # each epoch its own


def test_a_network_is_scored_out_of_fold_after_the_epochs_of_its_refit():
    """Not at each fold's own best epoch: the median best epoch is what the refit trains for."""
    from types import SimpleNamespace

    from tasks.evaluation.cross_validation import Folds, choose_by_cv
    from tasks.types import Split

    frame = pd.DataFrame({"x": range(6), "label": ["a", "b"] * 3})
    dataset = SimpleNamespace(
        frame=frame,
        classes=["a", "b"],
        class_indices=lambda rows: frame["label"].iloc[rows].map({"a": 0, "b": 1}).to_numpy(),
    )
    splits = [Split(np.array([2, 3, 4, 5]), np.array([0, 1]), np.array([], dtype=int), {"fold": 0}, {}),
              Split(np.array([0, 1, 4, 5]), np.array([2, 3]), np.array([], dtype=int), {"fold": 1}, {}),
              Split(np.array([0, 1, 2, 3]), np.array([4, 5]), np.array([], dtype=int), {"fold": 2}, {})]  # fmt: skip
    right, wrong = np.array([[0.9, 0.1], [0.1, 0.9]]), np.array([[0.1, 0.9], [0.9, 0.1]])
    # Each fold is right at its own best epoch (0, 1, 2) alone; the refit trains 2 epochs (the median of 1, 2, 3).
    held_out = [np.stack([right, wrong, wrong]), np.stack([wrong, right, wrong]), np.stack([wrong, wrong, right])]
    models = [SimpleNamespace(held_out=h, best_epoch=b) for h, b in zip(held_out, (0, 1, 2), strict=True)]

    choice = choose_by_cv({"cnn": models}, dataset, Folds(splits))

    assert choice.folds["cnn"] == [0.0, 1.0, 0.0]  # each fold after 2 epochs; at their own best, 1.0 each
