"""An ONNX network run by onnxruntime on the CPU: the runtime of `mlpipe compress`'s ONNX variants,
shipped with every registered version (only a version with an ONNX member imports it, and lists
onnxruntime in its requirements)."""

import numpy as np

ONNX_INPUT, ONNX_OUTPUT = "inputs", "logits"


class OnnxNetwork:
    """An ONNX network in onnxruntime on the CPU: network inputs in, softmax probabilities out."""

    def __init__(self, path: str, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def logits(self, inputs: np.ndarray) -> np.ndarray:
        return self.session.run([ONNX_OUTPUT], {ONNX_INPUT: inputs})[0]

    def probabilities(self, inputs: np.ndarray) -> np.ndarray:
        return softmax(self.logits(inputs))


def softmax(values: np.ndarray) -> np.ndarray:
    shifted = np.exp(values - values.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)
