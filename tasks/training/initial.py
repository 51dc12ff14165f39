"""A fit's starting network: its keyword arguments, its starting weights (a safetensors file in
the candidate's folder; the head is always new) and LoRA adapters, added after the weights."""

from dataclasses import dataclass
from pathlib import Path

from tasks.infra.errors import MlpipeError

INIT_FILE = "init.safetensors"


@dataclass
class Start:
    preprocessing: dict  # raw rows -> inputs, as the served model will do it
    network_kwargs: dict
    init_weights: Path | None = None  # the network's starting state; None: random
    lora: dict | None = None  # LoRA adapters the trainer adds to a pretrained encoder (`lora:` of its section)


def with_lora(encoder, lora: dict):
    """The encoder with LoRA adapters (Hu et al., 2021) where peft puts them for its architecture
    (BERT's query and value projections, ...): only they, and the head, train."""
    from peft import LoraConfig, get_peft_model

    settings = {"r": 8, "lora_alpha": 2 * lora.get("r", 8), "lora_dropout": 0.1} | lora
    try:
        return get_peft_model(encoder, LoraConfig(**settings))
    except (TypeError, ValueError) as error:
        raise MlpipeError(f"lora: {settings}: {str(error).splitlines()[0]}") from None


def save_init(folder: Path, out_dir: Path) -> Path:
    """The backbone's weights under the network's names (`encoder.`), for the trainer to start from."""
    import torch
    from transformers import AutoModel
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()  # a pooler the checkpoint lacks is new, as the head is: no warning
    try:
        state = AutoModel.from_pretrained(folder, dtype=torch.float32).state_dict()
    except Exception as error:  # noqa: BLE001 - missing or broken weights, in whichever way transformers says it
        raise MlpipeError(f"backbone {folder}: its weights do not load: {str(error).splitlines()[0]}") from None
    write_weights({f"encoder.{k}": v.contiguous() for k, v in state.items()}, out_dir / INIT_FILE)
    return out_dir / INIT_FILE


def write_weights(state: dict, path: Path) -> None:
    """A state as safetensors, whole or not at all: two identical runs at once may both write it."""
    import os
    from tempfile import NamedTemporaryFile

    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    with NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
        save_file(state, handle.name)
    os.replace(handle.name, path)


def initial_network(modality: str, family: str, network_kwargs: dict, init_weights: Path | None, lora: dict | None):
    """The network a fit starts from: built, given its starting weights, then its LoRA adapters
    (after the weights, whose names the adapters change)."""
    from models.networks import build_network

    network = build_network(modality, family, **network_kwargs)
    load_init(network, init_weights)
    if lora:
        network.encoder = with_lora(network.encoder, lora)
    return network


def load_init(network, path: Path | None) -> None:
    """Start the network from `path`: every weight but the head's must be there and fit."""
    if path is None:
        return
    import os

    from safetensors.torch import load_file

    if not path.exists() and os.environ.get("NODE_RANK", "0") != "0":
        return  # another node of a multi-node fit: DDP gives it node 0's weights when the fit starts
    state = {k: v for k, v in load_file(str(path)).items() if not k.startswith("head.")}
    own = network.state_dict()
    for key, value in state.items():
        if key in own and own[key].shape != value.shape:
            shapes = f"{tuple(value.shape)} there, {tuple(own[key].shape)} here"
            raise MlpipeError(f"the starting weights do not fit the network: {key} is {shapes}")
    missing = [k for k in network.load_state_dict(state, strict=False).missing_keys if not k.startswith("head.")]
    if missing:  # a body trained from random weights while its run says it started from them
        raise MlpipeError(f"the starting weights lack {len(missing)} of the network's, {missing[0]} first")
