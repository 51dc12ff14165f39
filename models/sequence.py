"""Networks for (possibly multivariate) time series of equal length."""

import math

from torch import Tensor, nn

from models.layers import SinusoidalPositions, encoder, max_mean_pool


class SequenceCNN(nn.Module):
    """1-D CNN with global average pooling (the FCN baseline of time-series classification).

    Input: (B, T, C) floats. Output: (B, num_classes) logits.
    """

    def __init__(self, in_channels: int, num_classes: int, channels: int = 64, dropout: float = 0.2) -> None:
        super().__init__()
        blocks = []
        widths = (in_channels, channels, 2 * channels, channels)
        for (c_in, c_out), kernel in zip(zip(widths, widths[1:], strict=False), (7, 5, 3), strict=True):
            blocks += [nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2), nn.BatchNorm1d(c_out), nn.ReLU()]
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(channels, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        features = self.features(x.transpose(1, 2))  # (B, channels, T)
        return self.head(features.mean(dim=2))  # (B, num_classes)


class SequenceRNN(nn.Module):
    """LSTM or GRU over time steps, optionally bidirectional, max- and mean-pooled.

    A long series is read in non-overlapping patches of time steps, at most `max_steps` of them:
    a recurrent cell's cost grows with the steps, and one over hundreds of steps trains slowly
    and forgets its start.

    Input: (B, T, C) floats with T == length. Output: (B, num_classes) logits.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        length: int | None = None,  # None: one step per time step (versions registered before patches)
        hidden: int = 64,
        layers: int = 2,
        cell: str = "lstm",
        bidirectional: bool = True,
        dropout: float = 0.2,
        max_steps: int = 64,
    ) -> None:
        super().__init__()
        self.patch = max(1, math.ceil(length / max_steps)) if length else 1
        rnn_class = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.rnn = rnn_class(
            in_channels * self.patch,
            hidden,
            num_layers=layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout,
        )
        out = hidden * (2 if bidirectional else 1)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * out, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        b, t, c = x.shape
        x = nn.functional.pad(x, (0, 0, 0, -t % self.patch))  # (B, T', C), T' a multiple of patch
        out, _ = self.rnn(x.reshape(b, -1, self.patch * c))  # (B, T'/patch, out)
        return self.head(max_mean_pool(out))


class SequenceTransformer(nn.Module):
    """Transformer encoder over patches of time steps with sinusoidal positions.

    Input: (B, T, C) floats. Output: (B, num_classes) logits.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        patch: int = 4,
        dim: int = 64,
        heads: int = 4,
        layers: int = 2,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.patch = patch
        # A strided convolution embeds each patch; padding keeps series of any length.
        self.embed = nn.Conv1d(in_channels, dim, kernel_size=patch, stride=patch)
        self.positions = SinusoidalPositions(dim)
        self.encoder = encoder(dim, heads, layers, dropout)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = x.transpose(1, 2)  # (B, C, T)
        remainder = x.shape[-1] % self.patch
        if remainder:
            x = nn.functional.pad(x, (0, self.patch - remainder))
        tokens = self.embed(x).transpose(1, 2)  # (B, T/patch, dim)
        encoded = self.encoder(self.positions(tokens))
        return self.head(self.norm(encoded.mean(dim=1)))  # (B, num_classes)
