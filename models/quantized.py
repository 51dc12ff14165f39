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


def plain_state(network) -> dict:
    """The int8 network's weights as plain tensors: each int8 weight as its integers, scale and
    zero point. torch.load(weights_only=True) reads it back; the quantized layers' own state
    (TorchScript objects for LSTM and GRU) would need a pickle, which could run code."""
    import torch

    state, owned = {}, []
    for name, module in _quantized_layers(network):
        owned.append(f"{name}.")
        weights, biases = _weights_and_biases(module)
        for key, weight in weights.items():
            if weight.qscheme() != torch.per_tensor_affine:
                raise ValueError(f"{name}.{key}: only per-tensor int8 weights are stored")
            state[f"{name}.{key}.int8"] = weight.int_repr()
            state[f"{name}.{key}.scale"] = torch.tensor(weight.q_scale(), dtype=torch.float64)
            state[f"{name}.{key}.zero_point"] = torch.tensor(weight.q_zero_point(), dtype=torch.int64)
        state |= {f"{name}.{key}": bias for key, bias in biases.items() if bias is not None}
    for key, value in network.state_dict().items():
        if not key.startswith(tuple(owned)):
            state[key] = value
    return state


def load_plain_state(network, state: dict) -> None:
    """plain_state's tensors into `network`, already made by quantized(); a key missing or left
    over is an error, as in load_state_dict."""
    import torch

    state, owned = dict(state), []
    for name, module in _quantized_layers(network):
        owned.append(f"{name}.")
        weights, biases = _weights_and_biases(module)
        if any(f"{name}.{key}.int8" not in state for key in weights):
            raise ValueError(f"{name}'s int8 weights are not stored as plain tensors")
        quantized_weights = {
            key: torch._make_per_tensor_quantized_tensor(
                state.pop(f"{name}.{key}.int8"),
                float(state.pop(f"{name}.{key}.scale")),
                int(state.pop(f"{name}.{key}.zero_point")),
            )
            for key in weights
        }
        loaded_biases = {key: state.pop(f"{name}.{key}", None) for key in biases}
        if isinstance(module, torch.ao.nn.quantized.dynamic.Linear):
            module.set_weight_bias(quantized_weights["weight"], loaded_biases["bias"])
        else:
            module.set_weight_bias(quantized_weights | loaded_biases)
    # The other layers' parameters and buffers, copied in place (the int8 layers' own
    # load_state_dict expects the state that plain_state leaves out).
    expected = {key for key in network.state_dict() if not key.startswith(tuple(owned))}
    if set(state) != expected:
        missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
        raise ValueError(f"int8 weights do not fit the network: missing {missing[:3]}, unexpected {unexpected[:3]}")
    with torch.no_grad():
        for key, value in state.items():
            owner, _, attribute = key.rpartition(".")
            target = getattr(network.get_submodule(owner), attribute)
            if not isinstance(value, torch.Tensor) or value.shape != target.shape:
                raise ValueError(f"{key} does not fit the network ({getattr(value, 'shape', type(value).__name__)})")
            target.copy_(value)


def _quantized_layers(network):
    import torch

    dynamic = torch.ao.nn.quantized.dynamic
    return [(n, m) for n, m in network.named_modules() if isinstance(m, (dynamic.Linear, dynamic.LSTM, dynamic.GRU))]


def _weights_and_biases(module) -> tuple[dict, dict]:
    import torch

    if isinstance(module, torch.ao.nn.quantized.dynamic.Linear):
        weight, bias = module._weight_bias()
        return {"weight": weight}, {"bias": bias}
    both = module._weight_bias()
    return both["weight"], both["bias"]
