"""int8 dynamic quantization of a network (torch.ao): how `mlpipe compress`'s quantized variants are
rebuilt when they load, shipped with every registered version.

Why torch.ao's `quantize_dynamic` and not torchao: see tasks/compression/quantize.py.
"""

import copy
import warnings
from contextlib import contextmanager


def quantized(network):
    """A copy of the network with its Linear, LSTM and GRU layers in dynamic int8 (on the CPU)."""
    import torch
    from torch.ao.quantization import quantize_dynamic

    layers = {torch.nn.Linear, torch.nn.LSTM, torch.nn.GRU}
    with warnings.catch_warnings():
        # PyTorch 2.13 deprecates the quantized tensors this makes (pytorch/pytorch#184982); the
        # choice and when to revisit it: tasks/compression/quantize.py.
        warnings.filterwarnings("ignore", message="torch.quantize_per_tensor", category=UserWarning)
        return quantize_dynamic(copy.deepcopy(network).cpu().eval(), layers, dtype=torch.qint8)


@contextmanager
def without_transformer_fast_path():
    """PyTorch's fused transformer path reads `Linear.weight`, which a quantized Linear has as a method."""
    import torch

    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(before)
