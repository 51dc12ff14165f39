"""int8 dynamic quantization: weights stored in int8, activations quantized on the fly.

Which API (measured on digits' three families, one thread, 2-core x86, by the spike of issue 20;
its script is in git history, commit 19b5a1f):
- torchao 0.18's `Int8DynamicActivationInt8WeightConfig` in eager mode, the CPU case here: it
  leaves LSTM layers as they are, and made every network slower than fp32 (the transformer 1.9 ->
  4.3 ms a row); its CPU speed comes with torch.compile, which a served pyfunc cannot count on.
- torch.ao's `quantize_dynamic` (still in PyTorch, deprecated in favour of torchao) quantizes
  Linear and LSTM/GRU: the rnn 1598 -> 415 KB and 2.7 -> 1.4 ms a row, the same test labels. It
  needs PyTorch's transformer fast path off (that path reads a Linear's `weight` tensor). PyTorch
  2.13 warns that the quantized tensors it makes are deprecated (pytorch/pytorch#184982): the
  choice to revisit when torchao's CPU path covers LSTM and runs faster than fp32 in eager mode.
- onnxruntime's `quantize_dynamic` covers Linear, MatMul and Conv of an ONNX file but not its LSTM:
  the cnn 114 -> 36 KB, the transformer 670 -> 281 KB at the same speed as ONNX fp32.
So: torch.ao for the PyTorch variant, onnxruntime's for the ONNX one.
"""

import logging
from pathlib import Path

from models.quantized import quantized as quantized_network  # noqa: F401 - the served code's, re-exported
from models.quantized import without_transformer_fast_path  # noqa: F401


def quantized_onnx(source: Path, target: Path) -> Path:
    """onnxruntime's dynamic int8 quantization of an ONNX file's weights."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    # It advises its pre-processing (shape inference for static quantization) on the root logger,
    # in every run's log; dynamic quantization does not need it.
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
    return target
