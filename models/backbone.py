"""What the pretrained networks share: a Hugging Face encoder rebuilt from its config (no hub, no
weights: those come from the backbone's folder when training, from the version when serving),
freezing its first blocks, layer-wise learning rates, and LoRA adapters (which the trainer adds:
tasks/training/starting.py) merged into the weights for serving."""

import torch
from torch import nn


def encoder_from_config(config: dict) -> nn.Module:
    """The encoder of a config.json's contents, with random weights, in fp32 whatever dtype the
    checkpoint was saved in (mixed precision on a GPU is Lightning's to apply)."""
    from transformers import AutoConfig, AutoModel
    from transformers.utils import logging

    logging.disable_progress_bar()
    return AutoModel.from_config(AutoConfig.for_model(**config), dtype=torch.float32)


def blocks_of(encoder: nn.Module) -> nn.ModuleList:
    """The encoder's stack of blocks (BERT's layers, ResNet's stages, ...): the ModuleList that
    holds the most parameters."""
    lists = [m for m in encoder.modules() if isinstance(m, nn.ModuleList) and len(m) > 0]
    if not lists:
        raise ValueError(f"{type(encoder).__name__} has no stack of blocks to freeze or decay")
    return max(lists, key=lambda m: sum(p.numel() for p in m.parameters()))


def freeze_first(encoder: nn.Module, blocks: int) -> None:
    """Freeze the embeddings and the first `blocks` blocks: they keep what pretraining learnt."""
    if blocks <= 0:
        return
    for depth, parameter in depths(encoder):
        if depth <= blocks:
            parameter.requires_grad_(False)


def depths(encoder: nn.Module) -> list[tuple[int, nn.Parameter]]:
    """Each parameter's depth: 0 below the blocks (embeddings), i + 1 in block i, and one past the
    last block above them (a final norm, a pooler)."""
    stack = blocks_of(encoder)
    in_block = {id(p): i + 1 for i, block in enumerate(stack) for p in block.parameters()}
    found, above = [], False
    for parameter in encoder.parameters():
        if id(parameter) in in_block:
            above = True
            found.append((in_block[id(parameter)], parameter))
        else:
            found.append((len(stack) + 1 if above else 0, parameter))
    return found


def parameter_groups(network: nn.Module, learning_rate: float, layer_decay: float, weight_decay: float) -> list:
    """AdamW groups with layer-wise learning-rate decay (Clark et al., 2020): the head trains at
    `learning_rate`, each block below it at `layer_decay` times the one above. Biases and norms
    take no weight decay."""
    encoder_depths = depths(network.encoder)
    top = max(d for d, _ in encoder_depths) + 1
    depth_of = {id(p): d for d, p in encoder_depths}
    groups: dict[tuple[int, bool], list] = {}
    for parameter in network.parameters():
        if parameter.requires_grad:
            key = (depth_of.get(id(parameter), top), parameter.ndim > 1)
            groups.setdefault(key, []).append(parameter)
    return [
        {
            "params": params,
            "lr": learning_rate * layer_decay ** (top - depth),
            "weight_decay": weight_decay if decayed else 0.0,
        }
        for (depth, decayed), params in sorted(groups.items(), key=lambda item: item[0])
    ]


def merged(encoder: nn.Module) -> nn.Module:
    """The adapters folded into the weights: a plain encoder that serves without peft."""
    merge = getattr(encoder, "merge_and_unload", None)
    return merge() if merge is not None else encoder


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, L, D) hidden states, (B, L) mask of real tokens -> (B, D) their mean."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)
