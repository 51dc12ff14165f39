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
