"""Compression's parts on a trained CNN and RNN of digits: ONNX export checked in onnxruntime,
int8 variants, and what each costs on this CPU."""

import numpy as np
import pytest
import torch

from models.preprocessing import model_inputs
from tasks.compression import measure, onnx_export, quantize
from tasks.infra.errors import MlpipeError


@pytest.fixture(scope="module")
def test_inputs(digits, digits_split):
    return digits.frame.iloc[digits_split.test]


def _torch_logits(network, inputs: np.ndarray) -> np.ndarray:
    with torch.no_grad(), quantize.without_transformer_fast_path():
        return network(torch.as_tensor(inputs)).numpy()


def test_the_onnx_export_gives_pytorchs_labels_and_probabilities(trained_cnn, test_inputs, tmp_path):
    inputs = model_inputs(test_inputs, trained_cnn.preprocessing).astype(np.float32)
    path = onnx_export.export(trained_cnn.network, inputs[:1], tmp_path / "cnn.onnx")
    session = onnx_export.session(path, threads=1)

    largest = onnx_export.check_against(
        _torch_logits(trained_cnn.network, inputs), onnx_export.logits(session, inputs), "ONNX"
    )
    assert largest < onnx_export.TOLERANCE
    # Any batch size: the batch axis is dynamic.
    assert onnx_export.logits(session, inputs[:3]).shape == (3, 10)


def test_a_check_that_finds_other_labels_refuses_the_variant():
    reference = np.array([[2.0, 0.0], [0.0, 2.0]])
    with pytest.raises(MlpipeError, match="ONNX int8 differs from the PyTorch model on the test rows: 1 labels"):
        onnx_export.check_against(reference, np.array([[2.0, 0.0], [2.0, 0.0]]), "ONNX int8")


def test_int8_shrinks_the_linear_layers_and_keeps_the_labels(trained_cnn, test_inputs, tmp_path):
    network = trained_cnn.network
    inputs = model_inputs(test_inputs, trained_cnn.preprocessing).astype(np.float32)
    quantized = quantize.quantized_network(network)
    agree = (_torch_logits(quantized, inputs).argmax(1) == _torch_logits(network, inputs).argmax(1)).mean()
    assert agree > 0.98
    dynamic = "torch.ao.nn.quantized.dynamic"
    assert any(type(m).__module__.startswith(dynamic) for m in quantized.modules())
    assert not any(type(m).__module__.startswith(dynamic) for m in network.modules())  # a copy: the original stays

    fp32 = onnx_export.export(network, inputs[:1], tmp_path / "cnn.onnx")
    int8 = quantize.quantized_onnx(fp32, tmp_path / "cnn-int8.onnx")
    assert measure.folder_size(int8) < measure.folder_size(fp32) / 2


def test_measure_reports_size_latency_and_throughput(trained_cnn, test_inputs):
    inputs = model_inputs(test_inputs, trained_cnn.preprocessing).astype(np.float32)
    parameters = sum(p.numel() for p in trained_cnn.network.parameters())

    cost = measure.measure(lambda x: _torch_logits(trained_cnn.network, x), inputs, 1234, parameters)

    assert cost.size_bytes == 1234 and cost.parameters == parameters
    assert 0 < cost.p50_ms <= cost.p95_ms and cost.rows_per_second > 0
    assert set(cost.metrics()) == {
        f"compression/{k}" for k in ("size_bytes", "parameters", "p50_ms", "p95_ms", "rows_per_second")
    }


def test_the_soft_loss_is_zero_when_the_student_matches_the_teacher_and_weights_mix_the_two():
    from models.classifier import Classifier

    classifier = Classifier(torch.nn.Identity(), num_classes=3, temperature=2.0, soft_weight=0.5)
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 0.0]])
    teacher = torch.softmax(logits, dim=1)
    assert float(classifier.soft_loss(logits, teacher)) == pytest.approx(0.0, abs=1e-6)
    other = torch.softmax(-logits, dim=1)
    assert float(classifier.soft_loss(logits, other)) > 0.1
    labels = torch.tensor([0, 1])
    hard = float(classifier.loss(logits, labels))
    mixed = float(classifier._step((logits, labels, other), "train"))
    assert mixed == pytest.approx(0.5 * hard + 0.5 * float(classifier.soft_loss(logits, other)))


def test_a_small_student_learns_from_the_teachers_probabilities(trained_cnn, digits, digits_split, tmp_path):
    from tasks.compression.distill import distill
    from tasks.types import TrainConfig

    teacher = trained_cnn.predict_proba(digits.frame.iloc[digits_split.train])
    config = TrainConfig(family="cnn", max_epochs=4, batch_size=64, patience=5, seed=1,
                         optimiser={"learning_rate": 0.005}, network={"channels": 8})  # fmt: skip

    student = distill(digits, digits_split, teacher, config, tmp_path / "student", temperature=4.0, soft_weight=0.7)

    teacher_size = sum(p.numel() for p in trained_cnn.network.parameters())
    assert sum(p.numel() for p in student.network.parameters()) < teacher_size / 2
    test = digits.frame.iloc[digits_split.test]
    accuracy = (student.predict_proba(test).argmax(1) == digits.class_indices(digits_split.test)).mean()
    assert accuracy > 0.5  # ten classes; a bench, not this test, says how close it comes to the teacher
    with pytest.raises(ValueError, match="do not fit the training rows"):
        distill(digits, digits_split, teacher[:5], config, tmp_path / "bad", temperature=4.0, soft_weight=0.7)


def test_a_variant_that_agrees_with_the_champion_is_non_inferior_and_one_that_loses_rows_is_not():
    from tasks.compression.gate import non_inferior

    rng = np.random.default_rng(0)
    champion = rng.random(2000) < 0.95
    same = non_inferior(champion.copy(), champion, margin=0.005)
    assert same.passed and same.delta == 0 and same.tags()["compression.decision"] == "non-inferior"

    worse = champion.copy()
    worse[np.flatnonzero(worse)[:40]] = False  # 2 points lost
    verdict = non_inferior(worse, champion, margin=0.005)
    assert not verdict.passed and verdict.delta == pytest.approx(-0.02)
    assert (
        verdict.reason.startswith("not registered: test/accuracy 0.9")
        and "it may lose more than 0.005" in verdict.reason
    )
    with pytest.raises(ValueError, match="same, non-empty test rows"):
        non_inferior(worse[:10], champion, margin=0.005)
