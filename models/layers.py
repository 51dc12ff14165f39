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


def token_embedding(vocab_size: int, dim: int, std: float = 0.1) -> nn.Embedding:
    """Embeddings of token ids, 0 the padding. torch's N(0, 1) start drowns a rare word's signal in
    noise it rarely trains away; a small start (Kim, 2014: U(-0.25, 0.25)) lets the text
    networks learn from words (trec: validation accuracy 0.817 -> 0.863, bench/variants.py)."""
    embedding = nn.Embedding(vocab_size, dim, padding_idx=0)
    nn.init.normal_(embedding.weight, std=std)
    with torch.no_grad():
        embedding.weight[0].zero_()
    return embedding


def masked_mean(x: Tensor, mask: Tensor | None) -> Tensor:
    """Mean over time of (B, T, D), counting only positions where mask (B, T) is True."""
    if mask is None:
        return x.mean(dim=1)
    weights = mask.unsqueeze(-1).to(x.dtype)  # (B, T, 1)
    return (x * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def masked_max(x: Tensor, mask: Tensor | None) -> Tensor:
    """Max over time of (B, T, D), ignoring positions where mask (B, T) is False; 0 for a row
    with no real position (a text of padding only), never the dtype's lowest value."""
    if mask is None:
        return x.max(dim=1).values
    pooled = x.masked_fill(~mask.unsqueeze(-1), torch.finfo(x.dtype).min).max(dim=1).values
    return pooled.masked_fill(~mask.any(dim=1, keepdim=True), 0.0)


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


class NgramBag(nn.Module):
    """fastText's bag of n-grams: the mean embedding of a text's hashed word n-grams (Joulin et al.,
    2017). Beside a network's own features it gives the head what a linear n-gram model sees.

    Input: (B, L) token ids, 0 padding. Output: (B, dim).
    """

    def __init__(self, buckets: int, dim: int, sizes: tuple[int, ...] = (2,)) -> None:
        super().__init__()
        self.buckets, self.sizes = buckets, tuple(sizes)
        self.bag = nn.EmbeddingBag(buckets + 1, dim, mode="sum", padding_idx=0)  # 0: no n-gram here

    def forward(self, tokens: Tensor) -> Tensor:
        ids = []
        for n in self.sizes:
            windows = tokens.unfold(1, n, 1)  # (B, L-n+1, n)
            hashed = torch.zeros_like(windows[..., 0])
            for i in range(n):
                hashed = (hashed * 1_000_003 + windows[..., i]) % self.buckets
            ids.append(torch.where((windows != 0).all(dim=-1), hashed + 1, 0))  # (B, L-n+1)
        ids = torch.cat(ids, dim=1)  # (B, N)
        counts = (ids != 0).sum(dim=1, keepdim=True).clamp(min=1)  # (B, 1)
        return self.bag(ids) / counts  # (B, dim): the mean over real n-grams


def ngram_bag(buckets: int, dim: int) -> NgramBag | None:
    return NgramBag(buckets, dim) if buckets else None


def add_ngrams(features: Tensor, ngrams: NgramBag | None, tokens: Tensor) -> Tensor:
    """(B, F) pooled features -> (B, F + dim) with the n-gram bag beside them, when there is one."""
    return features if ngrams is None else torch.cat([features, ngrams(tokens)], dim=1)
