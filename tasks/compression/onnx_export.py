"""A network as an ONNX file, run with onnxruntime on the CPU, and checked against PyTorch on the
same rows: the same labels, probabilities within a tolerance."""

from pathlib import Path

import numpy as np

from models.onnx_network import ONNX_INPUT, ONNX_OUTPUT, OnnxNetwork, softmax
from tasks.infra.errors import MlpipeError

TOLERANCE = 1e-4  # largest difference of a probability, fp32 against fp32


def export(network, example: np.ndarray, path: Path) -> Path:
    """The network (eval mode, CPU) as ONNX with a dynamic batch axis, from one example batch."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    network.eval()
    with torch.no_grad():
        # TorchScript-based export: the dynamo exporter needs onnxscript's rewrites for
        # nn.TransformerEncoder and gains nothing for these small networks.
        torch.onnx.export(
            network,
            (torch.as_tensor(example),),
            str(path),
            input_names=[ONNX_INPUT],
            output_names=[ONNX_OUTPUT],
            dynamic_axes={ONNX_INPUT: {0: "batch"}, ONNX_OUTPUT: {0: "batch"}},
            dynamo=False,
        )
    return path


def session(path: Path, threads: int | None = None) -> OnnxNetwork:
    """The ONNX file in onnxruntime on the CPU; `threads` intra-op threads (None: onnxruntime's choice)."""
    return OnnxNetwork(str(path), threads)


def check_against(reference: np.ndarray, candidate: np.ndarray, what: str, tolerance: float = TOLERANCE) -> float:
    """Raise unless `candidate` (logits) gives the reference's labels with probabilities within
    `tolerance`; the largest difference found."""
    expected, found = softmax(reference.astype(np.float64)), softmax(candidate.astype(np.float64))
    mismatched = int((expected.argmax(1) != found.argmax(1)).sum())
    largest = float(np.abs(expected - found).max()) if len(expected) else 0.0
    if mismatched or largest > tolerance:
        raise MlpipeError(
            f"{what} differs from the PyTorch model on the test rows: {mismatched} labels, "
            f"largest probability difference {largest:.2e} (tolerance {tolerance:.0e})"
        )
    return largest
