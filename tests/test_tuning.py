"""`mlpipe tune`: real Optuna studies in the storage beside the tracking store, real Lightning
trials with pruning, nested MLflow runs, and the best settings that the next run trains with."""

import re

import numpy as np
import optuna
import pytest
import yaml
from conftest import run_mlpipe

from tasks.infra.errors import MlpipeError
from tasks.infra.params import load_params
from tasks.infra.settings import CODE_ROOT, Settings
from tasks.infra.tuned import read_tuned
from tasks.training.config import train_config
from tasks.tuning.space import suggest
from tasks.tuning.storage import open_storage, storage_url


def _quick_params(root, cnn: dict | None = None, space: dict | None = None, **tuning) -> None:
    """The shipped params.yaml, with trials short enough for a test: 3 epochs of the image CNN."""
    params = yaml.safe_load((CODE_ROOT / "params.yaml").read_text())
    params["families"]["image"]["cnn"] |= {"max_epochs": 3, "patience": 3, **(cnn or {})}
    params["tuning"] |= {"startup_trials": 2, "warmup_epochs": 1, **tuning}
    params["tuning"]["spaces"]["image"]["cnn"] |= space or {}
    (root / "params.yaml").write_text(yaml.safe_dump(params))


def _study(settings: Settings, name_start: str):
    (summary,) = [
        s for s in optuna.get_all_study_summaries(open_storage(settings)) if s.study_name.startswith(name_start)
    ]
    return optuna.load_study(study_name=summary.study_name, storage=open_storage(settings))


def test_tuning_writes_the_best_validation_settings_that_the_next_run_trains_with(prefect_api, workspace):
    import mlflow

    from flows.training import training_pipeline
    from flows.tuning import tuning_pipeline

    # Defaults that cannot learn in 3 epochs: a tuned learning rate beats them on the check rows.
    # The space need not hold params.yaml's own value: the first trial trains it as it is.
    _quick_params(
        workspace, cnn={"learning_rate": 1e-5}, space={"learning_rate": {"low": 1e-3, "high": 0.02, "log": True}}
    )
    settings = Settings(root=workspace)
    summaries = tuning_pipeline(dataset="digits", models=["cnn"], trials=4)

    # One study, beside the tracking store, with the budget spent: finished and pruned trials count.
    assert storage_url(settings) == f"sqlite:///{workspace / 'mlflow' / 'optuna.db'}"
    study = _study(settings, "digits-cnn-")
    states = [t.state for t in study.trials]
    assert sum(s in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for s in states) == 4
    best = study.best_trial
    summary = summaries["cnn"]
    accuracy = best.user_attrs["val/accuracy"]  # the objective breaks ties by val/loss
    assert (summary["best_trial"], summary["value"]) == (best.number, accuracy)

    # The first trial is params.yaml's own settings; every finished trial is scored on the check
    # rows too, the half of the validation rows that the objective and the pruner never see.
    first = study.trials[0]
    assert first.user_attrs["mlpipe.defaults"] and first.params == {}
    assert first.intermediate_values == {}  # never reported to the pruner: it cannot be pruned
    rows = summary["rows"]
    assert rows["check"] > 0 and abs(rows["search"] - rows["check"]) <= 1
    assert summary["check"] == {
        "tuned": best.user_attrs["check/accuracy"],
        "defaults": first.user_attrs["check/accuracy"],
    }
    assert summary["kept"] == "tuned" and summary["why"].startswith(f"{rows['check']} check rows: accuracy +")

    # The best settings, in the data set's file, for every later run of it.
    tuned = read_tuned(settings, "digits")["cnn"]
    assert (tuned.study, tuned.trial, tuned.val_accuracy) == (study.study_name, best.number, round(accuracy, 6))
    assert (tuned.kept, tuned.check_accuracy, tuned.defaults_check_accuracy) == ("tuned", *summary["check"].values())
    assert set(tuned.settings) == set(load_params(settings).tuning.space("image", "cnn"))
    assert tuned.settings["channels"] == best.params["channels"]

    # MLflow: one tuning run per study, a nested run per trial, with the candidates' metric names.
    client = mlflow.MlflowClient(settings.tracking_uri)
    experiment = client.get_experiment_by_name("digits").experiment_id
    (parent,) = client.search_runs([experiment], "tags.`mlpipe.role` = 'tuning'")
    trials = client.search_runs([experiment], "tags.`mlpipe.role` = 'trial'")
    assert len(trials) == len(study.trials)
    assert {t.data.tags["mlflow.parentRunId"] for t in trials} == {parent.info.run_id}
    (defaults_run,) = [t for t in trials if "tuning.defaults" in t.data.tags]
    assert float(defaults_run.data.params["learning_rate"]) == 1e-5  # params.yaml's, trained as it is
    finished = [t for t in trials if t.data.tags["optuna.state"] == "COMPLETE"]
    assert finished and all(
        {"val/accuracy", "epoch/val_loss", "train/seconds"} <= set(t.data.metrics) for t in finished
    )
    assert parent.data.metrics["val/accuracy"] == pytest.approx(accuracy, abs=1e-6)
    plots = {a.path for a in client.list_artifacts(parent.info.run_id, "tuning")}
    assert "tuning/optimization_history.png" in plots

    # The next run of the data set trains the CNN with those settings, and says where they came from.
    registration = training_pipeline(dataset="digits", models=["cnn"], max_epochs=1)
    cnn = client.get_run(registration.candidate_run_ids["cnn"])
    assert cnn.data.params["network.channels"] == str(tuned.settings["channels"])
    assert float(cnn.data.params["learning_rate"]) == tuned.settings["learning_rate"]
    assert cnn.data.tags["tuning.cnn"] == f"study {study.study_name}, trial {best.number}"

    # A rerun with the budget spent runs no trial; a bigger budget runs only the rest.
    before = len(study.trials)  # Study.trials reads the storage anew: keep the count
    tuning_pipeline(dataset="digits", models=["cnn"], trials=4)
    assert len(_study(settings, "digits-cnn-").trials) == before
    tuning_pipeline(dataset="digits", models=["cnn"], trials=5)
    assert len(_study(settings, "digits-cnn-").trials) == before + 1


# Two worker processes training at once: in `make test-slow`, to keep `make test` under 25 minutes.
@pytest.mark.slow
def test_two_workers_share_one_study(prefect_api, workspace):
    from flows.tuning import tuning_pipeline

    _quick_params(workspace, startup_trials=5)  # no pruning, even of a trial begun past the budget
    tuning_pipeline(dataset="digits", models=["cnn"], trials=4, workers=2)

    study = _study(Settings(root=workspace), "digits-cnn-")
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    # The budget is the study's: each worker stops once 4 are done (one may finish the trial it had begun).
    assert 4 <= len(finished) <= 4 + 1 and len(study.trials) == len(finished)
    assert [t.number for t in study.trials if t.user_attrs.get("mlpipe.defaults")] == [0]  # enqueued once
    logs = sorted((workspace / "outputs" / "digits" / "tuning" / study.study_name).glob("worker-*.log"))
    assert [log.name for log in logs] == ["worker-0.log", "worker-1.log"]
    # The two workers overlapped in time: they ran at once, not one after the other.
    first, second = sorted(finished, key=lambda t: t.datetime_start)[:2]
    assert second.datetime_start < first.datetime_complete


def test_every_shipped_search_space_gives_settings_its_family_takes():
    project = load_params(Settings(root=CODE_ROOT))
    for modality, families in project.tuning.spaces.items():
        for family, space in families.items():
            chosen = suggest(optuna.create_study(direction="maximize").ask(), space)
            config = train_config(project, modality, family, 0, tuned=chosen)
            assert {**config.optimiser, **config.network, **config.text, "batch_size": config.batch_size}.keys() >= set(
                chosen
            ), (modality, family)


def _judged(trials: list[tuple]) -> dict:
    """The verdict on a real (in-memory) study: (objective, check rows right, defaults?[, state])."""
    from tasks.tuning.study import pack
    from tasks.tuning.verdict import verdict

    study = optuna.create_study(direction="maximize")
    for value, correct, defaults, *state in trials:
        state = state[0] if state else optuna.trial.TrialState.COMPLETE
        finished = state == optuna.trial.TrialState.COMPLETE
        attrs = {"check/accuracy": float(np.mean(correct)), "check/correct": pack(correct)} if finished else {}
        study.add_trial(
            optuna.trial.create_trial(
                state=state,
                value=value if finished else None,
                params={"x": value},
                distributions={"x": optuna.distributions.FloatDistribution(0, 1)},
                user_attrs=attrs | ({"mlpipe.defaults": True} if defaults else {}),
            )
        )
    return verdict(study.get_trials(), confidence=0.9, samples=1000, seed=0)


def _right(count: int, rows: int = 200, shift: int = 0) -> np.ndarray:
    """`count` of `rows` check rows right, starting at row `shift` (wrapping)."""
    return np.roll(np.arange(rows) < count, shift)


def test_the_best_trial_is_kept_only_when_it_beats_the_defaults_on_the_check_rows():
    defaults = (0.80, _right(160), True)
    # Better on the search rows, worse on the check rows: the study fitted its rows, the defaults stay.
    fitted = _judged([defaults, (0.90, _right(156), False), (0.85, _right(170), False)])
    assert (fitted["kept"], fitted["best_trial"], fitted["defaults_trial"]) == ("defaults", 1, 0)
    assert fitted["check"] == {"tuned": 0.78, "defaults": 0.80} and "no better than the defaults" in fitted["why"]
    # Better on the check rows too, but by a few rows among many that differ: chance, not a gain.
    chance = _judged([defaults, (0.90, _right(164, shift=20), False)])
    assert chance["kept"] == "defaults" and "the gain may be chance" in chance["why"]
    clear = _judged([defaults, (0.90, _right(190), False)])
    assert clear["kept"] == "tuned" and clear["why"].startswith("200 check rows: accuracy +0.1500")
    best_is_default = _judged([(0.90, _right(160), True), (0.85, _right(190), False)])
    assert best_is_default["kept"] == "defaults" and "no trial beat" in best_is_default["why"]


def test_the_verdict_needs_a_finished_trial_of_the_defaults():
    failed, complete = optuna.trial.TrialState.FAIL, optuna.trial.TrialState.COMPLETE
    # A defaults' trial whose worker died, retried: the copy that finished is what is compared.
    retried = _judged([(0.0, _right(0), True, failed), (0.80, _right(160), True, complete), (0.9, _right(190), False)])
    assert (retried["defaults_trial"], retried["kept"]) == (1, "tuned")
    never = _judged([(0.0, _right(0), True, failed), (0.9, _right(190), False)])
    assert never["kept"] == "defaults" and "no finished trial" in never["why"]


def test_the_validation_rows_are_halved_within_each_class(digits, digits_split, tmp_path):
    from tasks.tuning.study import TuneJob

    project = load_params(Settings(root=CODE_ROOT))
    job = TuneJob(digits, digits_split, project, "cnn", 0, 1, None, tmp_path, "", "")
    search, check = job.rows()
    assert not set(search) & set(check) and sorted([*search, *check]) == sorted(digits_split.val)
    assert abs(len(search) - len(check)) <= 1
    labels = digits.class_indices
    for label in range(len(digits.classes)):
        assert abs(int(np.sum(labels(search) == label)) - int(np.sum(labels(check) == label))) <= 1
    assert [a.tolist() for a in job.rows()] == [search.tolist(), check.tolist()]  # by the seed
    other = TuneJob(digits, digits_split, project, "cnn", 1, 1, None, tmp_path, "", "").rows()[0]
    assert other.tolist() != search.tolist()  # another seed, other halves


def test_a_killed_defaults_trial_runs_again_even_with_the_budget_spent(digits, digits_split, workspace):
    from optuna.trial import TrialState

    from tasks.tuning.study import DEFAULTS, TuneJob, open_study
    from tasks.tuning.tracking import start_tuning_run
    from tasks.tuning.trial import run_study

    _quick_params(workspace, startup_trials=5)
    settings = Settings(root=workspace)
    runs = start_tuning_run(settings, "digits", "digits-tune", {})
    job = TuneJob(digits, digits_split, load_params(settings), "cnn", 0, 1, None, workspace, *runs, max_epochs=1)
    study = open_study(job)
    (enqueued,) = study.get_trials(states=(TrialState.WAITING,))
    assert enqueued.user_attrs[DEFAULTS] and enqueued.params == {}
    # Its worker died: the trial is failed. A spent budget (one sampled trial) does not stop its retry.
    study.tell(study.ask(), state=TrialState.FAIL)
    study.enqueue_trial({"dropout": 0.2})
    study.tell(study.ask(), 0.5)
    assert open_study(job, enqueue=False).get_trials(states=(TrialState.WAITING,)) == []  # reading changes nothing

    run_study(job, worker=1)  # only worker 0 runs the retry: no other worker samples past the budget
    assert [t.state for t in _study(settings, "digits-cnn-").trials][-1] == TrialState.WAITING
    run_study(job)
    trials = open_study(job, enqueue=False).trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    assert trials[-1].user_attrs[DEFAULTS] and "check/accuracy" in trials[-1].user_attrs
    run_study(job)  # the budget spent and nothing waiting: no trial
    assert len(open_study(job).trials) == 3


def test_a_setting_its_family_does_not_take_is_refused_naming_it():
    project = load_params(Settings(root=CODE_ROOT))
    with pytest.raises(MlpipeError, match=r"families.image.cnn.width' is not a setting of the image cnn"):
        train_config(project, "image", "cnn", 0, tuned={"width": 3})
    with pytest.raises(MlpipeError, match=r"tuned settings of image cnn: key 'batch_size': Input should be a valid"):
        train_config(project, "image", "cnn", 0, tuned={"batch_size": "64"})


def test_the_storage_follows_the_tracking_store(tmp_path, monkeypatch, postgres_url):
    monkeypatch.delenv("MLPIPE_OPTUNA_STORAGE", raising=False)
    settings = Settings(root=tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", postgres_url)
    url = storage_url(settings)
    assert url == postgres_url.removesuffix("/mlflow") + "/mlflow_optuna"  # the same server, a database of its own
    study = optuna.create_study(study_name="s", storage=open_storage(settings), direction="maximize")
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    assert len(optuna.load_study(study_name="s", storage=open_storage(settings)).trials) == 2

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    with pytest.raises(MlpipeError, match="set MLPIPE_OPTUNA_STORAGE to a database URL"):
        storage_url(settings)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--trials", "0"], "error: parameter 'trials': Input should be greater than or equal to 1 (got 0)"),
        (["--models", "baseline"], "error: parameter 'models.0': Input should be 'cnn', 'rnn' or"),
    ],
)
def test_bad_tuning_options_are_one_line_errors(workspace, args, message):
    done = run_mlpipe(Settings(root=workspace), "tune", *args)
    assert done.returncode == 1 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (workspace / "mlflow").exists()  # nothing was created


def test_run_with_tune_tunes_then_trains_with_what_the_study_kept(workspace):
    import mlflow

    _quick_params(workspace)
    settings = Settings(root=workspace)
    done = run_mlpipe(settings, "run", "--models", "cnn", "--tune", "1", "--max-epochs", "1")

    assert done.returncode == 0, done.stderr[-2000:]
    assert "cnn: best val/accuracy " in done.stdout and "Registered model 'digits' version 1" in done.stdout
    assert re.search(r"digits/cnn: trial 1/1 complete, best so far 0\.\d{4} \(trial 0\)", done.stderr)  # progress
    # One trial is the defaults' alone: nothing beat them, so the run trains params.yaml's settings.
    tuned = read_tuned(settings, "digits")["cnn"]
    assert (tuned.trials, tuned.kept, tuned.settings) == (1, "defaults", {})
    assert "cnn: keeps params.yaml's defaults (no trial beat params.yaml's settings" in done.stdout
    client = mlflow.MlflowClient(settings.tracking_uri)
    experiment = client.get_experiment_by_name("digits").experiment_id
    (cnn,) = client.search_runs([experiment], "tags.`mlpipe.role` = 'candidate' and tags.family = 'cnn'")
    assert cnn.data.tags["tuning.cnn"] == f"study {tuned.study}: params.yaml's settings kept ({tuned.why})"
    defaults = train_config(load_params(settings), "image", "cnn", 0).optimiser
    assert float(cnn.data.params["learning_rate"]) == defaults["learning_rate"]


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"dropout": {"low": 0.5, "high": 0.1}}, "low (0.5) must be below high (0.1)"),
        ({"learning_rate": {"low": 0.0, "high": 0.1, "log": True}}, "a log range needs low > 0"),
        ({"dropout": {"low": "0.1", "high": 0.5}}, "tuning.spaces.image.cnn.dropout"),
    ],
)
def test_a_bad_search_space_is_refused_when_params_yaml_is_read(tmp_path, space, message):
    params = yaml.safe_load((CODE_ROOT / "params.yaml").read_text())
    params["tuning"]["spaces"]["image"]["cnn"] = space
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(MlpipeError, match=re.escape(message)):
        load_params(Settings(root=tmp_path))
