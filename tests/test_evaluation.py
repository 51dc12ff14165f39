import numpy as np

from tasks.evaluation.plots import plot_confusion_matrix
from tasks.evaluation.scoring import evaluate, score


def test_scores_match_hand_computed_values():
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 0])

    metrics = score(y_true, y_pred)

    assert metrics["test/accuracy"] == 4 / 6
    # per-class F1: class 0: p=1/2 r=1/2 -> 0.5; class 1: p=2/3 r=1 -> 0.8; class 2: p=1 r=1/2 -> 2/3
    assert abs(metrics["test/f1_macro"] - (0.5 + 0.8 + 2 / 3) / 3) < 1e-12


def test_confusion_matrix_is_a_png(tmp_path):
    path = plot_confusion_matrix(np.array([0, 1, 1]), np.array([0, 1, 0]), ["a", "b"], "t", tmp_path / "cm.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_trained_cnn_is_evaluated_on_the_test_rows(trained_cnn, digits, digits_split, tmp_path):
    evaluation = evaluate(trained_cnn, digits, digits_split, tmp_path)

    assert len(evaluation.predictions) == len(digits_split.test) == 360
    assert evaluation.metrics["test/accuracy"] > 0.8  # chance is 0.1; three epochs reach ~0.95
    assert 0 < evaluation.metrics["test/f1_macro"] <= 1
    assert evaluation.confusion_matrix_path.exists()


def test_a_confusion_matrix_of_many_classes_is_drawn_as_colours_only(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    drawn = {}
    real_savefig = plt.Figure.savefig

    def keep(figure, *args, **kwargs):  # the real figure is saved; its texts are counted first
        drawn["cell_texts"] = sum(len(ax.texts) for ax in figure.axes)
        return real_savefig(figure, *args, **kwargs)

    monkeypatch.setattr(plt.Figure, "savefig", keep)
    rng = np.random.default_rng(0)
    few, many = rng.integers(0, 5, 200), rng.integers(0, 40, 2000)
    plot_confusion_matrix(few, few, list(range(5)), "five", tmp_path / "five.png")
    assert drawn["cell_texts"] == 25  # every cell numbered
    plot_confusion_matrix(many, many, list(range(40)), "forty", tmp_path / "forty.png")
    assert drawn["cell_texts"] == 0 and (tmp_path / "forty.png").stat().st_size > 0
