"""Image networks beside the CNN: rows as time steps (RNN) and patch embeddings (Transformer)."""

import torch
from torch import Tensor, nn

from models.layers import encoder, max_mean_pool


class ImageRNN(nn.Module):
    """Reads an image row by row with a bidirectional GRU.

    Input: (B, C, H, W) floats. Output: (B, num_classes) logits.
    """

    def __init__(
        self, in_channels: int, width: int, num_classes: int, hidden: int = 128, layers: int = 2, dropout: float = 0.2
    ) -> None:
        super().__init__()
        self.rnn = nn.GRU(
            in_channels * width, hidden, num_layers=layers, batch_first=True, bidirectional=True, dropout=dropout
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(4 * hidden, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        rows = x.permute(0, 2, 1, 3).reshape(b, h, c * w)  # (B, H, C*W)
        out, _ = self.rnn(rows)  # (B, H, 2*hidden)
        return self.head(max_mean_pool(out))  # (B, 4*hidden) -> (B, num_classes)


class ImageTransformer(nn.Module):
    """A small vision Transformer: non-overlapping patches, learned positions, mean pooling.

    Input: (B, C, H, W) floats with H and W divisible by patch. Output: (B, num_classes) logits.
    """

    def __init__(
        self,
        in_channels: int,
        height: int,
        width: int,
        num_classes: int,
        patch: int = 2,
        dim: int = 64,
        heads: int = 4,
        layers: int = 3,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if height % patch or width % patch:
            raise ValueError(f"image size {height}x{width} is not divisible by patch size {patch}")
        self.embed = nn.Conv2d(in_channels, dim, kernel_size=patch, stride=patch)
        self.positions = nn.Parameter(torch.zeros(1, (height // patch) * (width // patch), dim))
        nn.init.trunc_normal_(self.positions, std=0.02)
        self.encoder = encoder(dim, heads, layers, dropout)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        patches = self.embed(x).flatten(2).transpose(1, 2)  # (B, P, dim)
        encoded = self.encoder(patches + self.positions)  # (B, P, dim)
        return self.head(self.norm(encoded.mean(dim=1)))  # (B, num_classes)
