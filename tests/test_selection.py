"""The classical baseline, the ensemble and the choice on validation rows (real scikit-learn and torch)."""

from dataclasses import replace

import mlflow
import numpy as np
import pytest

from tasks.data.splitting import split
from tasks.evaluation.scoring import evaluate
from tasks.evaluation.selection import (
    BELOW_MAJORITY,
    Ensemble,
    choose,
    choose_among,
    close_to_best,
    majority_rate,
)
from tasks.evaluation.tasks import choose_candidate
from tasks.infra.errors import MlpipeError
from tasks.registry.packaging import PYFUNC_FILE, requirements, write_model_files
from tasks.training.baseline import fit_baseline
from tasks.types import BaselineConfig


def _scores(accuracy: float, f1: float | None = None, loss: float = 0.5) -> dict:
    return {
        "val/accuracy": accuracy,
        "val/f1_macro": accuracy if f1 is None else f1,
        "val/loss": loss,
    }


def test_the_best_validation_accuracy_is_chosen_whatever_the_order():
    scores = {"cnn": _scores(0.90), "baseline": _scores(0.95), "rnn": _scores(0.93)}
    choice = choose(scores, majority=0.5)
    assert (choice.family, choice.selected_by, choice.value) == ("baseline", "val/accuracy", 0.95)
    assert choice.notes == [
        "No network beats the classical baseline on the validation rows (baseline 0.9500, best network rnn "
        "0.9300): the baseline is registered."
    ]


def test_ties_go_to_f1_then_the_ensemble_then_a_network_then_the_lower_log_loss():
    assert choose({"cnn": _scores(0.9, 0.8), "rnn": _scores(0.9, 0.85)}, 0.5).family == "rnn"
    assert choose({"cnn": _scores(0.9, loss=0.3), "rnn": _scores(0.9, loss=0.2)}, 0.5).family == "rnn"
    # 1-NN's log loss is ~0 whenever it is right: no reason to prefer it over a tied network.
    assert choose({"cnn": _scores(1.0, loss=0.05), "baseline": _scores(1.0, loss=1e-7)}, 0.5).family == "cnn"
    # Nothing on the validation rows tells tied candidates apart: their mean is the safer bet.
    tied = {"cnn": _scores(0.9, loss=0.3), "baseline": _scores(0.9), "ensemble": _scores(0.9, loss=0.35)}
    assert choose(tied, 0.5).family == "ensemble"
    assert choose({**tied, "ensemble": _scores(0.89, loss=0.1)}, 0.5).family == "cnn"  # it must not lose
    assert choose({**tied, "ensemble": _scores(0.9, 0.7)}, 0.5).family == "cnn"  # on accuracy or on F1
    assert choose({"baseline": _scores(0.9), "ensemble": _scores(0.85)}, 0.5).family == "baseline"


def test_the_ensemble_leaves_out_a_candidate_clearly_worse_than_the_best_on_validation():
    rng = np.random.default_rng(0)
    best = rng.random(400) < 0.95
    close = best.copy()  # wrong on five rows the best gets right, right on three it gets wrong:
    close[np.flatnonzero(best)[:5]] = False  # within one standard error of the paired difference
    close[np.flatnonzero(~best)[:3]] = True
    weak = rng.random(400) < 0.55  # OSULeaf's 1-NN beside its CNN
    assert close_to_best([best, close, weak, best.copy()]) == [0, 1, 3]
    assert close_to_best([np.ones(5, bool)] * 3) == [0, 1, 2]  # all tied: all kept


def _probabilities(y: np.ndarray, right: dict[int, float]) -> np.ndarray:
    """Two-class probabilities giving the true class 0.9, or `right[row]` on the rows named."""
    p_true = np.full(len(y), 0.9)
    p_true[list(right)] = list(right.values())
    p = np.empty((len(y), 2))
    p[np.arange(len(y)), y], p[np.arange(len(y)), 1 - y] = p_true, 1 - p_true
    return p


def test_the_ensemble_is_chosen_within_one_standard_error_of_the_best_and_not_beyond():
    y = np.tile([0, 1], 30)
    probabilities = {
        "cnn": _probabilities(y, {0: 0.55, 1: 0.55, 10: 0.1}),  # 59 of 60 right
        "rnn": _probabilities(y, {0: 0.0, 1: 0.0}),  # 58: sure and wrong where the others hesitate
        "baseline": _probabilities(y, {0: 0.55, 1: 0.55, 20: 0.1}),  # 59
    }
    choice = choose_among(dict(probabilities), y, 2, 0.5, ensemble=True)
    assert choice.members == ["cnn", "rnn", "baseline"] and choice.family == "ensemble"
    # By hand. cnn: row 10 (a 0) called 1; rows 0 and 1 right at 0.55, row 10 at 0.1, 57 rows at 0.9.
    assert choice.scores["cnn"] == pytest.approx(
        {
            "val/accuracy": 59 / 60,
            "val/f1_macro": (2 * 29 / (2 * 29 + 1) + 2 * 30 / (2 * 30 + 1)) / 2,  # class 0: 1 missed; class 1: 1 extra
            "val/loss": -(2 * np.log(0.55) + np.log(0.1) + 57 * np.log(0.9)) / 60,
        }
    )
    # The ensemble's true-class probability is the members' mean: (0.55 + 0 + 0.55) / 3 on rows 0
    # and 1 (both wrong: one missed and one extra per class), (0.1 + 0.9 + 0.9) / 3 on rows 10 and 20.
    assert choice.scores["ensemble"] == pytest.approx(
        {
            "val/accuracy": 58 / 60,  # below cnn's 59, within 1 SE
            "val/f1_macro": 2 * 29 / (2 * 29 + 1 + 1),
            "val/loss": -(2 * np.log(1.1 / 3) + 2 * np.log(1.9 / 3) + 56 * np.log(0.9)) / 60,
        }
    )
    assert choice.notes[0].startswith("The ensemble (0.9667) is within one standard error of cnn (0.9833)")
    assert choose_among(dict(probabilities), y, 2, 0.5, ensemble=False).family == "cnn"
    wrong = _probabilities(y, dict.fromkeys(range(20), 0.0))  # a third of the rows wrong: far from the best
    assert choose_among({"cnn": probabilities["cnn"], "rnn": wrong}, y, 2, 0.5, ensemble=True).family == "cnn"


def test_a_candidate_below_the_majority_rate_is_flagged():
    choice = choose({"cnn": _scores(0.9), "rnn": _scores(0.27)}, majority=0.34)
    assert choice.flags("rnn") == [BELOW_MAJORITY] and choice.flags("cnn") == []
    assert choice.notes == ["rnn ends below the majority-class rate: validation accuracy 0.2700 < 0.3400"]


def test_majority_rate_is_the_validation_share_of_the_most_common_training_class(tmp_path):
    import pandas as pd

    from tasks.types import Dataset, Split

    labels = ["b", "a", "b", "c", "b", "a", "b", "c", "c", "a"]
    dataset = Dataset("tiny", "image", pd.DataFrame({"x": range(10), "label": labels}), "label", ["x"], tmp_path, "0")
    # Training rows 0-4: b three times, a and c once. Validation rows 5-9 (a, b, c, c, a) hold one b:
    # 1/5. (Their own most common class would give 2/5, the training rows' share of b 3/5.)
    parts = Split(train=np.arange(5), val=np.arange(5, 10), test=np.array([], int))
    assert majority_rate(dataset, parts) == pytest.approx(0.2)
    # The order of the rows does not matter, only which rows are which.
    assert majority_rate(dataset, Split(np.array([4, 2, 0, 3, 1]), np.array([9, 7, 5, 8, 6]), parts.test)) == 0.2


@pytest.mark.parametrize("modality", ["image", "sequence", "text"])
def test_the_baseline_beats_chance_on_each_modality_and_serves_raw_rows(small_datasets, modality, tmp_path):
    dataset = small_datasets[modality]
    parts = split(dataset.frame[dataset.label_column].to_numpy(), 0.25, 0.2, 0, 0)
    model = fit_baseline(dataset, parts, BaselineConfig(seed=0))

    evaluation = evaluate(model, dataset, parts, tmp_path / "evaluation")
    chance = 1 / len(dataset.classes)
    assert evaluation.metrics["test/accuracy"] > chance + 0.2
    assert not (tmp_path / "evaluation" / "learning_curves.png").exists()  # no epochs, no curves

    # Packaged as the registry does and loaded as a server would: the same probabilities.
    rows = dataset.frame.iloc[parts.test][dataset.feature_columns]
    served = _round_trip(model, rows, tmp_path)
    probabilities = model.predict_proba(rows)
    assert served["label"].tolist() == np.asarray(dataset.classes)[probabilities.argmax(axis=1)].tolist()
    np.testing.assert_allclose(served["probability"], probabilities.max(axis=1), rtol=1e-6)


def test_minirocket_fits_on_sequences_with_calibrated_probabilities_and_serves_raw_rows(small_datasets, tmp_path):
    from tasks.infra.params import load_params
    from tasks.infra.settings import Settings
    from tasks.training.config import classical_configs

    dataset = small_datasets["sequence"]  # ECG200's 100 training series
    parts = split(dataset.frame[dataset.label_column].to_numpy(), 0.25, 0.2, 0, 0)
    project = load_params(Settings(root=tmp_path))
    configs = {c.family: c for c in classical_configs(project, "sequence", 0, ["cnn"])}  # rocket joins by default
    assert set(configs) == {"baseline", "rocket"} and configs["rocket"].settings == {"kernels": 10_000}

    model = fit_baseline(dataset, parts, configs["rocket"])

    assert model.family == "rocket" and model.description.startswith("MiniRocket(10000 kernels)")
    evaluation = evaluate(model, dataset, parts, tmp_path / "evaluation")
    assert evaluation.metrics["test/accuracy"] > 0.75  # ECG200's published MiniRocket: 0.91 on its own test file
    rows = dataset.frame.iloc[parts.test][dataset.feature_columns]
    probabilities = model.predict_proba(rows)
    # Softened by the temperature fitted on the ridge's leave-one-out scores: neither one-hot nor flat.
    assert 0.5 < probabilities.max(axis=1).mean() < 1.0 and model.estimator.temperature_ > 0
    served = _round_trip(model, rows, tmp_path)
    np.testing.assert_allclose(served["probability"], probabilities.max(axis=1), rtol=1e-6)
    assert "aeon" in " ".join(requirements(rocket=True))  # in the version's pip requirements
    with pytest.raises(MlpipeError, match="--models rocket classifies sequences, not text data"):
        classical_configs(project, "text", 0, ["rocket"])


def test_the_ensemble_averages_the_networks_and_the_baselines_probabilities_and_serves_as_one_model(
    digits, digits_split, trained_cnn, tmp_path
):
    # A second network: the same one with other weights, so the mean differs from either.
    other = replace(trained_cnn, network=_perturbed(trained_cnn.network))
    baseline = fit_baseline(digits, digits_split, BaselineConfig(seed=0))
    ensemble = Ensemble([trained_cnn, other, baseline])
    rows = digits.frame.iloc[digits_split.test][digits.feature_columns]

    members = (trained_cnn, other, baseline)
    expected = sum(member.predict_proba(rows) for member in members) / 3
    np.testing.assert_allclose(ensemble.predict_proba(rows), expected, rtol=1e-6)
    served = _round_trip(ensemble, rows, tmp_path)
    assert served["label"].tolist() == np.asarray(digits.classes)[expected.argmax(axis=1)].tolist()
    np.testing.assert_allclose(served["probability"], expected.max(axis=1), rtol=1e-5)


def test_the_test_rows_never_change_the_choice(digits, digits_split, trained_cnn):
    baseline = fit_baseline(digits, digits_split, BaselineConfig(seed=0))
    choice = choose_candidate.fn([trained_cnn, baseline], digits, digits_split, ensemble=True)

    # Scramble every test label: the validation figures, and so the choice, stay as they were.
    scrambled = digits.frame.copy()
    test_labels = scrambled[digits.label_column].to_numpy().copy()
    test_labels[digits_split.test] = np.random.default_rng(0).permutation(test_labels[digits_split.test])
    scrambled[digits.label_column] = test_labels
    again = choose_candidate.fn([trained_cnn, baseline], replace(digits, frame=scrambled), digits_split, ensemble=True)
    assert again == choice
    # The figures are the validation rows', by the textbook formulas (numpy only, below).
    val = digits.frame.iloc[digits_split.val]
    y = _indices(digits, digits_split.val)
    assert choice.scores["cnn"] == pytest.approx(_by_hand(trained_cnn.predict_proba(val), y, 10), rel=1e-5)
    assert choice.scores["baseline"] == pytest.approx(_by_hand(baseline.predict_proba(val), y, 10), rel=1e-5)


def test_the_ensemble_is_scored_as_the_mean_of_its_members_predictions(digits, digits_split, trained_cnn):
    strong = fit_baseline(digits, digits_split, BaselineConfig(seed=0))
    other = replace(fit_baseline(digits, digits_split, BaselineConfig(seed=0, settings={"C": 1})), family="svc_c1")
    choice = choose_candidate.fn([trained_cnn, strong, other], digits, digits_split, ensemble=True)

    assert choice.members == ["baseline", "svc_c1"]  # the one-epoch CNN trails them by far
    val = digits.frame.iloc[digits_split.val]
    y = _indices(digits, digits_split.val)
    mean = (strong.predict_proba(val) + other.predict_proba(val)) / 2  # the two members' probabilities, averaged
    expected = _by_hand(mean, y, 10)
    assert choice.scores["ensemble"] == pytest.approx(expected, rel=1e-5)
    assert expected["val/loss"] != pytest.approx(_by_hand(strong.predict_proba(val), y, 10)["val/loss"], rel=1e-3)
    ensemble = Ensemble([strong, other])  # as the flow registers it
    assert _by_hand(ensemble.predict_proba(val), y, 10) == pytest.approx(expected, rel=1e-5)
    assert choose_candidate.fn([trained_cnn, strong], digits, digits_split).members == []  # ensemble off


def _indices(dataset, positions) -> np.ndarray:
    """The class index of each row: digits' labels are their own indices, 0 to 9."""
    assert dataset.classes == list(range(10))
    return dataset.frame[dataset.label_column].iloc[positions].to_numpy()


def _by_hand(probabilities: np.ndarray, y: np.ndarray, num_classes: int) -> dict[str, float]:
    """Accuracy, macro F1 (2TP / (2TP + FP + FN) per class, 0 for a class never seen nor
    predicted) and log loss (mean -ln of the true class's probability, each row clipped at
    1e-7 and summing to one), written out with numpy."""
    predicted = probabilities.argmax(axis=1)
    f1 = []
    for c in range(num_classes):
        tp = np.sum((predicted == c) & (y == c))
        wrong = np.sum((predicted == c) != (y == c))  # FP + FN
        f1.append(2 * tp / (2 * tp + wrong) if tp + wrong else 0.0)
    clipped = np.clip(probabilities, 1e-7, 1.0)
    true = clipped[np.arange(len(y)), y] / clipped.sum(axis=1)
    return {"val/accuracy": np.mean(predicted == y), "val/f1_macro": np.mean(f1), "val/loss": -np.mean(np.log(true))}


def _perturbed(network):
    import copy

    import torch

    other = copy.deepcopy(network)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in other.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))
    return other.eval()


def _round_trip(model, rows, folder):
    """Save the candidate as the registry's pyfunc model and load it back, as `mlflow models serve` does."""
    files = folder / "files"
    files.mkdir()
    from tasks.infra.settings import CODE_ROOT

    mlflow.pyfunc.save_model(
        path=str(folder / "model"),
        python_model=str(PYFUNC_FILE),
        artifacts=write_model_files(model, files),
        code_paths=[str(CODE_ROOT / "models")],
        pip_requirements=requirements(),
    )
    return mlflow.pyfunc.load_model(str(folder / "model")).predict(rows)
