"""The promotion gate: its statistics, and the champion re-scored with its own registered code in a
fresh process (real MLflow store, real torch models)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
from conftest import make_workspace, validate

from tasks.evaluation.scoring import evaluate
from tasks.evaluation.statistics import paired_bootstrap
from tasks.evaluation.tasks import choose_candidate
from tasks.infra.errors import MlpipeError
from tasks.infra.params import PromotionParams
from tasks.infra.retrying import is_transient
from tasks.infra.settings import CODE_ROOT, Settings
from tasks.registry.promotion import champion_correctness, decide
from tasks.registry.serving import WORKER, FreshProcess, serving_check
from tasks.registry.tasks import register

LINEAGE = {"git_sha": "abc123", "git_dirty": "false", "prefect_flow_run_id": "none"}


def test_the_interval_of_the_gain_matches_a_hand_computation():
    # Two rows, one gained: a resample holds it 0, 1 or 2 times (chances 1/4, 1/2, 1/4), so the
    # mean gain is 0, 0.5 or 1 and the central 95 % of the resamples spans [0, 1].
    delta, interval = paired_bootstrap(np.array([True, True]), np.array([True, False]), 4000, 0.95, 0)
    assert delta == 0.5 and interval == (0.0, 1.0)
    # Every row gained: no resample can say otherwise.
    assert paired_bootstrap(np.ones(50, bool), np.zeros(50, bool), 1000, 0.95, 0) == (1.0, (1.0, 1.0))


def test_a_gain_is_promoted_only_when_its_interval_clears_min_delta():
    old = np.random.default_rng(0).random(400) < 0.85
    new = old.copy()
    new[np.flatnonzero(~old)[:20]] = True  # 20 more rows right: +5 points
    delta, (low, high) = paired_bootstrap(new, old, 1000, 0.95, 0)
    assert delta == pytest.approx(0.05) and 0.02 < low < 0.04 < high

    # The point estimate clears min_delta, the interval does not.
    refused = decide(new, "1", old, PromotionParams(min_delta=0.04))
    assert not refused.promote and "its lower bound is not above min_delta 0.04" in refused.reason
    assert decide(new, "1", old, PromotionParams(min_delta=0.01)).promote
    assert not decide(new, "1", old, PromotionParams(min_delta=0.06)).promote  # the gain itself is below it
    tags = decide(new, "1", old, PromotionParams(min_delta=0.01)).tags()
    assert tags["promotion.decision"] == "promoted" and float(tags["promotion.ci_low"]) == pytest.approx(low)
    assert float(tags["promotion.ci_high"]) == pytest.approx(high)
    assert float(tags["promotion.champion_accuracy"]) == pytest.approx(old.mean())
    assert float(tags["promotion.challenger_accuracy"]) == pytest.approx(new.mean())


def test_the_gates_say_how_many_rows_they_judged_and_call_nothing_on_a_handful_of_differing_rows():
    from tasks.compression.gate import non_inferior
    from tasks.tuning.verdict import verdict

    champion = np.random.default_rng(1).random(360) < 0.9
    one_lost = champion.copy()
    one_lost[np.flatnonzero(champion)[0]] = False  # one row of 360: 0.28 points
    # The bootstrap alone would call this a loss beyond the 0.5-point margin; one row shows nothing.
    assert paired_bootstrap(one_lost, champion, 1000, 0.95, 0)[1][0] < -0.005
    compact = non_inferior(one_lost, champion, margin=0.005)
    assert compact.passed and "360 rows judged, 1 where they differ (one row is 0.0028)" in compact.reason
    assert "1 differing rows are too few to show a loss" in compact.reason
    five_gained = champion.copy()
    five_gained[np.flatnonzero(~champion)[:5]] = True
    promoted = decide(five_gained, "1", champion)
    assert not promoted.promote and "5 differing rows are too few to tell a gain from chance" in promoted.reason
    assert decide(five_gained, "1", champion).interval[0] > 0  # though the bootstrap's interval clears zero
    more = champion.copy()
    more[np.flatnonzero(~champion)[:8]] = True
    assert decide(more, "1", champion).promote and "8 where they differ" in decide(more, "1", champion).reason
    assert not non_inferior(~champion, champion, margin=0.005).passed  # every row differs: a real loss

    class Trial:  # what the verdict reads of an Optuna trial
        def __init__(self, number, value, right, defaults):
            from optuna.trial import TrialState

            from tasks.tuning.study import CHECK, CHECKED, DEFAULTS, pack

            self.number, self.value, self.state = number, value, TrialState.COMPLETE
            self.user_attrs = {CHECK: float(right.mean()), CHECKED: pack(right), DEFAULTS: defaults}

    tuned = verdict([Trial(0, 0.8, champion, True), Trial(1, 0.9, five_gained, False)], 0.95, 1000, 0)
    assert tuned["kept"] == "defaults" and "too few to tell a gain from chance" in tuned["why"]


def test_a_warn_only_run_is_never_crowned_not_even_as_the_first_version():
    correct = np.ones(100, bool)
    decision = decide(correct, None, None, warn_only=True)
    assert not decision.promote and "--warn-only" in decision.reason
    assert decision.tags()["promotion.decision"] == "not promoted"
    assert not decide(correct, "1", np.zeros(100, bool), warn_only=True).promote


def test_a_champion_that_cannot_be_scored_says_why():
    decision = decide(np.ones(10, bool), "4", None, champion_error="FileNotFoundError: member_0.pt")
    assert not decision.promote
    assert decision.reason == "not promoted: champion v4 could not be re-scored: FileNotFoundError: member_0.pt"


@pytest.fixture(scope="module")
def champion(trained_cnn, digits, digits_split, tmp_path_factory):
    """trained_cnn registered as v1, @champion, in a store of its own."""
    root = make_workspace(tmp_path_factory.mktemp("promotion") / "project")
    settings = Settings(root=root)
    report = validate(digits.frame, "digits", CODE_ROOT / "expectations" / "digits.json", root / "validation.json")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLPIPE_ROOT", str(root))
        evaluation = evaluate(trained_cnn, digits, digits_split, root / "outputs" / "cnn")
        choice = choose_candidate.fn([trained_cnn], digits, digits_split)
        registration = register(digits, digits_split, report, [(trained_cnn, evaluation)], choice, LINEAGE, settings)
    assert registration.promoted
    return settings, evaluation


BLANK_IMAGES = (
    "return (np.asarray(values, dtype=np.float32) / scale)",  # models/preprocessing.py's images_from_table
    "return (0 * np.asarray(values, dtype=np.float32))",  # every image blank: one class for all
)


def _blank_images(preprocessing: Path) -> str:
    """Make the preprocessing.py at this path blank every image; returns its text as it was."""
    saved = preprocessing.read_text()
    assert BLANK_IMAGES[0] in saved, f"{preprocessing} no longer reads: {BLANK_IMAGES[0]}"
    preprocessing.write_text(saved.replace(*BLANK_IMAGES))
    return saved


def test_the_champion_is_rescored_with_its_registered_code_not_the_checkouts(champion, digits, digits_split, tmp_path):
    import shlex
    import shutil

    settings, evaluation = champion
    client = mlflow.MlflowClient(settings.tracking_uri)
    rows = digits.frame.iloc[digits_split.test]
    features, labels = rows[digits.feature_columns], rows["label"]

    # The project's preprocessing changes after the champion was registered: in a copy of the
    # checkout's `models`, first on the path of every Python that FreshProcess starts (ahead of
    # the editable install), and in this process's imported module.
    checkout = tmp_path / "checkout"
    shutil.copytree(CODE_ROOT / "models", checkout / "models", ignore=shutil.ignore_patterns("__pycache__"))
    _blank_images(checkout / "models" / "preprocessing.py")
    started = tmp_path / "started"
    boot = (
        f"import runpy, sys; sys.path.insert(0, {str(checkout)!r}); "
        "sys.argv = [a for a in sys.argv[1:] if not a.startswith('-')]; "
        "runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    python = tmp_path / "python"  # the worker's interpreter: the same one, with the changed checkout first
    python.write_text(f'#!/bin/sh\necho "$@" >> {started}\nexec {sys.executable} -I -c {shlex.quote(boot)} "$@"\n')
    python.chmod(0o755)
    probe = tmp_path / "probe.py"
    probe.write_text("import importlib.util\nprint(importlib.util.find_spec('models').origin)\n")
    seen = subprocess.run([python, "-I", probe], capture_output=True, text=True, cwd=tmp_path)
    assert seen.stdout.strip() == str(checkout / "models" / "__init__.py"), seen.stderr  # the changed code is found
    started.unlink()
    import models.preprocessing

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            models.preprocessing,
            "images_from_table",
            lambda values, shape, scale: np.zeros((len(values), *shape), np.float32),
        )
        patch.setattr(sys, "executable", str(python))  # FreshProcess starts its worker with sys.executable
        with FreshProcess() as process:
            version, correct, error = champion_correctness(
                client, settings.tracking_uri, "digits", features, labels, process
            )
    assert started.read_text().split() == ["-I", str(WORKER)]  # the worker ran beside the changed checkout
    assert (version, error) == ("1", None)
    assert correct.mean() == pytest.approx(evaluation.metrics["test/accuracy"])

    # The same change made to the registered copy of the code does reach the re-scoring: it is that code that runs.
    source = Path(client.get_model_version_download_uri("digits", "1").removeprefix("file://"))
    registered = next(source.rglob("models/preprocessing.py"))
    saved = _blank_images(registered)
    try:
        with FreshProcess() as process:
            _, blind, _ = champion_correctness(client, settings.tracking_uri, "digits", features, labels, process)
    finally:
        registered.write_text(saved)
    assert blind.mean() < 0.5 < correct.mean()  # every image blank: one class for all


def test_a_fresh_process_answers_again_when_a_task_is_retried(champion, digits, digits_split):
    settings, _ = champion
    rows = digits.frame.iloc[digits_split.test[:4]][digits.feature_columns]
    with FreshProcess() as process:
        first = process.predict(settings.tracking_uri, "digits", "1", rows)
        again = process.predict(settings.tracking_uri, "digits", "1", rows)  # its first worker is spent
    assert first.tolist() == again.tolist() and len(first) == 4


def test_a_promotion_that_stopped_after_moving_the_alias_is_completed_not_decided_again(champion, digits, digits_split):
    from tasks.registry.aliases import HISTORY_TAG, champion_history
    from tasks.registry.promotion import decide_promotion

    settings, evaluation = champion
    client = mlflow.MlflowClient(settings.tracking_uri)
    # v1's earlier attempt moved @champion, then stopped before the history and the marker.
    marker = client.get_model_version("digits", "1").tags["promotion"]
    client.delete_model_version_tag("digits", "1", "promotion")
    client.set_registered_model_tag("digits", HISTORY_TAG, "[]")
    no_processes = (None, None)  # neither re-scoring nor a serving check may run again
    decision = decide_promotion(client, settings, digits, digits_split, "1", evaluation, None, False, no_processes)
    assert decision.promote and decision.reason == "champion: first version (recorded by an earlier attempt)"
    assert champion_history(client, "digits") == ["1"]
    assert client.get_registered_model("digits").tags[HISTORY_TAG] == '["1"]'
    assert client.get_model_version("digits", "1").tags["promotion"] == decision.reason
    client.set_model_version_tag("digits", "1", "promotion", marker)


def test_the_serving_check_compares_labels_and_proves_the_models_code(champion, digits, digits_split):
    settings, evaluation = champion
    rows = digits.frame.iloc[digits_split.test][digits.feature_columns]
    evaluated = np.asarray(digits.classes)[evaluation.predictions]
    with FreshProcess() as process:
        serving_check(process, settings.tracking_uri, "digits", "1", rows, evaluated)
    wrong = evaluated.copy()
    wrong[:3] = np.roll(wrong[:3], 1) if len(set(wrong[:3])) > 1 else ["x"] * 3
    with FreshProcess() as process, pytest.raises(MlpipeError, match=r"labels \d of \d+ test rows otherwise"):
        serving_check(process, settings.tracking_uri, "digits", "1", rows, wrong)


def test_the_worker_cannot_import_the_project_from_outside_the_models_code(tmp_path):
    code = tmp_path / "code"
    (code / "models").mkdir(parents=True)
    (code / "models" / "__init__.py").write_text("WHERE = 'the model'\n")
    script = f"""
import importlib.util, sys
spec = importlib.util.spec_from_file_location("serving_worker", {str(WORKER)!r})
worker = importlib.util.module_from_spec(spec)
spec.loader.exec_module(worker)
OnlyTheModelsCode = worker.OnlyTheModelsCode
sys.meta_path.insert(0, OnlyTheModelsCode(["tasks", "flows", "models"], __import__("pathlib").Path({str(code)!r})))
import models
print(models.WHERE)
try:
    import tasks
except ModuleNotFoundError as error:
    print(error)
"""
    done = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["the model", "No module named 'tasks' in the model's code (code_paths)"]


def test_every_module_the_models_code_imports_is_in_its_requirements(tmp_path):
    spec = importlib.util.spec_from_file_location("serving_worker", WORKER)
    worker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(worker)
    unlisted_imports = worker.unlisted_imports
    (tmp_path / "code" / "models").mkdir(parents=True)
    text_module = "import json\nfrom tokenizers import Tokenizer\nimport torch\n"
    (tmp_path / "code" / "models" / "text.py").write_text(text_module)
    (tmp_path / "pyfunc_model.py").write_text("import mlflow\nimport numpy as np\nfrom models.text import x\n")
    (tmp_path / "requirements.txt").write_text("mlflow==3.0\ntorch==2.0\nnumpy==2.0\n")
    assert unlisted_imports(tmp_path) == ["tokenizers"]
    (tmp_path / "requirements.txt").write_text("mlflow==3.0\ntorch==2.0\nnumpy==2.0\ntokenizers==0.20\n")
    assert unlisted_imports(tmp_path) == []


def test_an_unreachable_store_is_retried_never_taken_for_no_champion(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    uri = "http://127.0.0.1:9"  # the discard port: nothing answers
    with FreshProcess() as process, pytest.raises(Exception) as raised:
        champion_correctness(mlflow.MlflowClient(uri), uri, "digits", None, None, process)
    assert is_transient(raised.value)


def test_a_champion_whose_files_are_gone_is_reported_with_the_error(champion, digits, digits_split, tmp_path):
    settings, _ = champion
    client = mlflow.MlflowClient(settings.tracking_uri)
    rows = digits.frame.iloc[digits_split.test[:5]]
    source = client.get_model_version_download_uri("digits", "1")  # file:///... in the embedded store
    spec = next(Path(source.removeprefix("file://")).rglob("spec.json"))
    saved = spec.read_text()
    spec.unlink()
    try:
        with FreshProcess() as process:
            version, correct, error = champion_correctness(
                client, settings.tracking_uri, "digits", rows[digits.feature_columns], rows["label"], process
            )
    finally:
        spec.write_text(saved)
    assert version == "1" and correct is None and "spec.json" in error
