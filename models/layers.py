import math

import torch
from torch import Tensor, nn


class SinusoidalPositions(nn.Module):
    """Adds fixed sine/cosine position encodings to a (B, T, D) sequence."""

    def __init__(self, dim: int, max_length: int = 4096) -> None:
        super().__init__()
        position = torch.arange(max_length).unsqueeze(1)  # (T, 1)
        frequency = torch.exp(torch.arange(0, dim, 2) * (-math.log(10_000.0) / dim))  # (D/2,)
        table = torch.zeros(max_length, dim)
        table[:, 0::2] = torch.sin(position * frequency)
        table[:, 1::2] = torch.cos(position * frequency[: dim // 2])
        self.register_buffer("table", table, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.table[: x.shape[1]]  # (B, T, D)


def masked_mean(x: Tensor, mask: Tensor | None) -> Tensor:
    """Mean over time of (B, T, D), counting only positions where mask (B, T) is True."""
    if mask is None:
        return x.mean(dim=1)
    weights = mask.unsqueeze(-1).to(x.dtype)  # (B, T, 1)
    return (x * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def masked_max(x: Tensor, mask: Tensor | None) -> Tensor:
    """Max over time of (B, T, D), ignoring positions where mask (B, T) is False."""
    if mask is not None:
        x = x.masked_fill(~mask.unsqueeze(-1), torch.finfo(x.dtype).min)
    return x.max(dim=1).values


def max_mean_pool(x: Tensor, mask: Tensor | None = None) -> Tensor:
    """(B, T, D) -> (B, 2*D): the max and the mean over (real) time steps, side by side."""
    return torch.cat([masked_max(x, mask), masked_mean(x, mask)], dim=1)


def encoder(dim: int, heads: int, layers: int, dropout: float) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(
        dim, heads, dim_feedforward=4 * dim, dropout=dropout, batch_first=True, norm_first=True
    )
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


UNKNOWN_ID = 1  # the tokenizer's [UNK] (features.train_tokenizer); 0 is padding


def drop_words(tokens: Tensor, p: float, training: bool) -> Tensor:
    """Word dropout: while training, each real token of (B, L) ids becomes [UNK] with probability p,
    so that a text network cannot lean on a few words (Iyyer et al., 2015)."""
    if not training or p <= 0:
        return tokens
    dropped = (torch.rand(tokens.shape, device=tokens.device) < p) & (tokens != 0)
    return tokens.masked_fill(dropped, UNKNOWN_ID)
