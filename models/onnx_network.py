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

    def probabilities(self, inputs: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Softmax probabilities, `batch_size` rows a call: a call's activations grow with its rows."""
        starts = range(0, len(inputs), batch_size)
        batches = [softmax(self.logits(inputs[start : start + batch_size])) for start in starts]
        if batches:
            return np.concatenate(batches)
        classes = self.session.get_outputs()[0].shape[-1]  # no rows: still one column per class
        return np.zeros((0, classes if isinstance(classes, int) else 0), dtype=np.float32)


def softmax(values: np.ndarray) -> np.ndarray:
    shifted = np.exp(values - values.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)
