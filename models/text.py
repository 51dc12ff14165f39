"""Networks over token ids (0 is padding).

Each may add fastText's bag of hashed word bigrams beside its own features (ngram_buckets > 0)
and drop words while training (word_dropout); both off by default, which keeps the weights of
versions registered before them loadable.
"""

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from models.layers import (
    SinusoidalPositions,
    add_ngrams,
    drop_words,
    encoder,
    masked_max,
    masked_mean,
    max_mean_pool,
    ngram_bag,
    token_embedding,
)


class TextCNN(nn.Module):
    """Embeddings, parallel 1-D convolutions of several widths, max over time (Kim, 2014).

    Input: (B, L) token ids. Output: (B, num_classes) logits.
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        embed_dim: int = 128,
        channels: int = 128,
        kernels: tuple[int, ...] = (2, 3, 4, 5),
        dropout: float = 0.3,
        word_dropout: float = 0.0,
        ngram_buckets: int = 0,
        ngram_dim: int = 64,
    ) -> None:
        super().__init__()
        self.word_dropout = word_dropout
        self.embed = token_embedding(vocab_size, embed_dim)
        self.convs = nn.ModuleList(nn.Conv1d(embed_dim, channels, k, padding=k // 2) for k in kernels)
        self.ngrams = ngram_bag(ngram_buckets, ngram_dim)
        features = channels * len(kernels) + (ngram_dim if ngram_buckets else 0)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(features, num_classes))

    def forward(self, tokens: Tensor) -> Tensor:
        mask = tokens != 0  # (B, L)
        tokens = drop_words(tokens, self.word_dropout, self.training)
        x = self.embed(tokens).transpose(1, 2)  # (B, E, L)
        pooled = []
        for conv in self.convs:
            features = torch.relu(conv(x))[..., : tokens.shape[1]].transpose(1, 2)  # (B, L, channels)
            pooled.append(masked_max(features, mask))
        return self.head(add_ngrams(torch.cat(pooled, dim=1), self.ngrams, tokens))


class TextRNN(nn.Module):
    """Embeddings and a bidirectional LSTM or GRU, max- and mean-pooled over real tokens.

    Input: (B, L) token ids. Output: (B, num_classes) logits.
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        embed_dim: int = 128,
        hidden: int = 128,
        layers: int = 1,
        cell: str = "lstm",
        bidirectional: bool = True,
        dropout: float = 0.3,
        word_dropout: float = 0.0,
        ngram_buckets: int = 0,
        ngram_dim: int = 64,
    ) -> None:
        super().__init__()
        self.word_dropout = word_dropout
        self.embed = token_embedding(vocab_size, embed_dim)
        self.ngrams = ngram_bag(ngram_buckets, ngram_dim)
        rnn_class = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.rnn = rnn_class(
            embed_dim,
            hidden,
            num_layers=layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if layers > 1 else 0.0,
        )
        out = hidden * (2 if bidirectional else 1)
        features = 2 * out + (ngram_dim if ngram_buckets else 0)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(features, num_classes))

    def forward(self, tokens: Tensor) -> Tensor:
        mask = tokens != 0  # (B, L)
        # Packing makes the backward direction start at each text's last real token, not at padding.
        lengths = mask.sum(dim=1).clamp(min=1).cpu()
        tokens = drop_words(tokens, self.word_dropout, self.training)
        packed = pack_padded_sequence(self.embed(tokens), lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=tokens.shape[1])  # (B, L, out)
        return self.head(add_ngrams(max_mean_pool(out, mask), self.ngrams, tokens))


class TextTransformer(nn.Module):
    """Transformer encoder with sinusoidal positions and a padding mask, mean-pooled.

    Input: (B, L) token ids. Output: (B, num_classes) logits.
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        dim: int = 128,
        heads: int = 4,
        layers: int = 2,
        dropout: float = 0.1,
        word_dropout: float = 0.0,
        ngram_buckets: int = 0,
        ngram_dim: int = 64,
    ) -> None:
        super().__init__()
        self.word_dropout = word_dropout
        self.embed = token_embedding(vocab_size, dim)
        self.positions = SinusoidalPositions(dim)
        self.encoder = encoder(dim, heads, layers, dropout)
        self.norm = nn.LayerNorm(dim)
        self.ngrams = ngram_bag(ngram_buckets, ngram_dim)
        self.head = nn.Linear(dim + (ngram_dim if ngram_buckets else 0), num_classes)

    def forward(self, tokens: Tensor) -> Tensor:
        mask = tokens != 0  # (B, L)
        # A row of padding only may attend to its first position: no key at all makes attention NaN.
        mask[:, 0] |= ~mask.any(dim=1)
        tokens = drop_words(tokens, self.word_dropout, self.training)
        encoded = self.encoder(self.positions(self.embed(tokens)), src_key_padding_mask=~mask)  # (B, L, dim)
        return self.head(add_ngrams(self.norm(masked_mean(encoded, mask)), self.ngrams, tokens))
