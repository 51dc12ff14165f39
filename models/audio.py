"""Networks for sound: each reads (B, samples) waveforms and computes its own log-mel spectrogram,
so the registered model takes raw audio and does the same when serving as when training.

The front end (`LogMel`): a short-time Fourier transform (25 ms Hann windows every 10 ms, the
numbers of `torch.stft`, computed as a 1-D convolution with the windowed DFT's cosine and sine
rows, so that the whole network exports to ONNX and quantizes), a triangular mel filter bank
(HTK's mel scale, up to the Nyquist frequency), the log, and each band normalised by its mean
and standard deviation over the training rows (given to the network, never learnt). While
training, SpecAugment (Park et al., 2019) masks one random band of frequencies and one random
stretch of time in every clip.
"""

import math

import numpy as np
import torch
from torch import Tensor, nn

from models.layers import SinusoidalPositions, encoder, max_mean_pool

N_MELS = 40  # bands: enough for speech at 8 kHz (the spoken-digit baselines use 40)
WINDOW_SECONDS, HOP_SECONDS = 0.025, 0.010


def mel_filters(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """(n_fft // 2 + 1, n_mels) triangular filters evenly spaced on HTK's mel scale, 0 Hz to Nyquist."""
    mel = np.linspace(0.0, 2595.0 * np.log10(1.0 + sample_rate / 2 / 700.0), n_mels + 2)
    hz = 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    bins = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    low, centre, high = hz[:-2, None], hz[1:-1, None], hz[2:, None]
    rising = (bins[None] - low) / np.maximum(centre - low, 1e-9)
    falling = (high - bins[None]) / np.maximum(high - centre, 1e-9)
    return np.maximum(0.0, np.minimum(rising, falling)).T.astype(np.float32)


def dft_basis(n_fft: int, win_length: int) -> Tensor:
    """(2 * (n_fft // 2 + 1), 1, n_fft) convolution kernels: the Hann-windowed DFT's cosine rows,
    then its negated sine rows (torch.stft's window, centred in n_fft)."""
    window = torch.zeros(n_fft, dtype=torch.float64)
    start = (n_fft - win_length) // 2
    window[start : start + win_length] = torch.hann_window(win_length, dtype=torch.float64)
    angle = 2 * math.pi * torch.outer(torch.arange(n_fft // 2 + 1), torch.arange(n_fft)).double() / n_fft
    return torch.cat([torch.cos(angle) * window, -torch.sin(angle) * window]).float()[:, None, :]


class LogMel(nn.Module):
    """(B, samples) -> (B, n_mels, frames) log-mel energies, normalised per band when `mean` and
    `std` (n_mels each, from the training rows) are given; SpecAugment's masks while training."""

    def __init__(
        self,
        sample_rate: int,
        n_mels: int = N_MELS,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        freq_mask: int = 8,  # widest band masked, in mel bands; 0: none
        time_mask: float = 0.1,  # longest stretch masked, as a share of the frames; 0: none
    ) -> None:
        super().__init__()
        self.win_length = int(round(WINDOW_SECONDS * sample_rate))
        self.hop = int(round(HOP_SECONDS * sample_rate))
        self.n_fft = 2 ** math.ceil(math.log2(self.win_length))
        self.freq_mask, self.time_mask = freq_mask, time_mask
        self.register_buffer("basis", dft_basis(self.n_fft, self.win_length), persistent=False)
        self.register_buffer(
            "filters", torch.from_numpy(mel_filters(sample_rate, self.n_fft, n_mels)), persistent=False
        )
        self.register_buffer("mean", torch.tensor(mean if mean is not None else [0.0] * n_mels), persistent=False)
        self.register_buffer("std", torch.tensor(std if std is not None else [1.0] * n_mels), persistent=False)

    def forward(self, waves: Tensor) -> Tensor:
        with torch.autocast(device_type=waves.device.type, enabled=False):  # the spectrum in float32
            padded = nn.functional.pad(waves.float()[:, None], (self.n_fft // 2, self.n_fft // 2), mode="reflect")
            parts = nn.functional.conv1d(padded, self.basis, stride=self.hop)  # (B, 2 * freqs, frames)
            real, imaginary = parts.chunk(2, dim=1)
            power = real.square() + imaginary.square()  # (B, freqs, frames)
            mels = torch.log(torch.einsum("bft,fm->bmt", power, self.filters) + 1e-6)
            mels = (mels - self.mean[:, None]) / self.std[:, None]
        return self._augment(mels) if self.training else mels

    def _augment(self, mels: Tensor) -> Tensor:
        """One band of frequencies and one stretch of time set to the mean (0) in every clip."""
        batch, bands, frames = mels.shape
        keep = torch.ones_like(mels, dtype=torch.bool)
        for size, axis, length in ((self.freq_mask, 1, bands), (int(self.time_mask * frames), 2, frames)):
            if size <= 0:
                continue
            width = torch.randint(0, size + 1, (batch, 1), device=mels.device)
            start = (torch.rand(batch, 1, device=mels.device) * (length - width + 1)).long()
            index = torch.arange(length, device=mels.device)[None]
            masked = (index >= start) & (index < start + width)  # (B, length)
            keep &= ~(masked[:, :, None] if axis == 1 else masked[:, None, :])
        return mels * keep


def band_statistics(waves: np.ndarray, sample_rate: int, n_mels: int = N_MELS, batch: int = 256) -> dict:
    """Each band's mean and standard deviation of the log-mel energies over `waves` (N, samples):
    what `LogMel` normalises by. From the training rows only."""
    front = LogMel(sample_rate, n_mels).eval()
    total, square, count = torch.zeros(n_mels, dtype=torch.float64), torch.zeros(n_mels, dtype=torch.float64), 0
    with torch.no_grad():
        for start in range(0, len(waves), batch):
            mels = front(torch.from_numpy(np.ascontiguousarray(waves[start : start + batch]))).double()
            total += mels.sum(dim=(0, 2))
            square += mels.square().sum(dim=(0, 2))
            count += mels.shape[0] * mels.shape[2]
    mean = total / count
    std = (square / count - mean.square()).clamp(min=1e-6).sqrt()
    return {"mel_mean": mean.float().tolist(), "mel_std": std.float().tolist()}


VOICED_NATS = 8.0  # a frame within this much of the clip's loudest (about 35 dB) holds sound, not padding


def band_features(waves: np.ndarray, sample_rate: int, info: dict, batch: int = 256) -> np.ndarray:
    """(N, samples) -> (N, 2 * n_mels): each band's mean and standard deviation of the log-mel
    energies over the clip's sounding frames (the classical baseline's features). Pooling over
    every frame let the silence a short clip is padded with speak for it: leaving one speaker out
    among the four others of the spoken digits' training speakers, sounding frames scored
    0.40-0.57 where all frames scored 0.30-0.42, in each of the five such splits (the held-out
    speaker never chose)."""
    front = LogMel(sample_rate, len(info["mel_mean"])).eval()  # the energies as measured, in nats
    rows = []
    with torch.no_grad():
        for start in range(0, len(waves), batch):
            mels = front(torch.from_numpy(np.ascontiguousarray(waves[start : start + batch])))  # (B, mels, T)
            loudness = mels.mean(dim=1, keepdim=True)  # (B, 1, T)
            sounding = (loudness > loudness.amax(dim=2, keepdim=True) - VOICED_NATS).to(mels.dtype)
            count = sounding.sum(dim=2)
            mean = (mels * sounding).sum(dim=2) / count
            spread = (((mels - mean[:, :, None]) ** 2 * sounding).sum(dim=2) / count).sqrt()
            rows.append(torch.cat([mean, spread], dim=1).numpy())
    return np.concatenate(rows) if rows else np.zeros((0, 2 * len(info["mel_mean"])), dtype=np.float32)


def band_energies(waves: np.ndarray, sample_rate: int, n_mels: int = N_MELS, batch: int = 256) -> np.ndarray:
    """(N, samples) -> (N, n_mels): each band's mean log-mel energy over the clip (drift compares them)."""
    front = LogMel(sample_rate, n_mels).eval()
    with torch.no_grad():
        rows = [front(torch.from_numpy(np.ascontiguousarray(waves[i : i + batch]))).mean(dim=2).numpy()
                for i in range(0, len(waves), batch)]  # fmt: skip
    return np.concatenate(rows) if rows else np.zeros((0, n_mels), dtype=np.float32)


class AudioCNN(nn.Module):
    """A 2-D CNN over the log-mel spectrogram: blocks of two 3x3 convolutions and a 2x2 max pool,
    then the mean over time and frequency.

    Input: (B, samples) waveforms. Output: (B, num_classes) logits.
    """

    def __init__(
        self,
        num_classes: int,
        sample_rate: int,
        mel_mean: list[float],
        mel_std: list[float],
        channels: int = 32,
        blocks: int = 3,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.front = LogMel(sample_rate, len(mel_mean), mel_mean, mel_std)
        layers, width = [], 1
        for i in range(blocks):
            out = channels * 2**i
            for c_in in (width, out):
                layers += [nn.Conv2d(c_in, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU()]
            layers.append(nn.MaxPool2d(2))
            width = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, num_classes))

    def forward(self, waves: Tensor) -> Tensor:
        features = self.features(self.front(waves).unsqueeze(1))  # (B, C, mels', frames')
        return self.head(features.mean(dim=(2, 3)))


class AudioRNN(nn.Module):
    """A bidirectional GRU or LSTM over the spectrogram's frames, max- and mean-pooled.

    Input: (B, samples) waveforms. Output: (B, num_classes) logits.
    """

    def __init__(
        self,
        num_classes: int,
        sample_rate: int,
        mel_mean: list[float],
        mel_std: list[float],
        hidden: int = 128,
        layers: int = 2,
        cell: str = "gru",
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.front = LogMel(sample_rate, len(mel_mean), mel_mean, mel_std)
        rnn_class = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.rnn = rnn_class(
            len(mel_mean), hidden, num_layers=layers, batch_first=True, bidirectional=True, dropout=dropout
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(4 * hidden, num_classes))

    def forward(self, waves: Tensor) -> Tensor:
        out, _ = self.rnn(self.front(waves).transpose(1, 2))  # (B, frames, 2 * hidden)
        return self.head(max_mean_pool(out))


class AudioTransformer(nn.Module):
    """A Transformer encoder over patches of the spectrogram: every `patch` frames of all bands
    make one token (the whole height, as speech moves along time), with sinusoidal positions.

    Input: (B, samples) waveforms. Output: (B, num_classes) logits.
    """

    def __init__(
        self,
        num_classes: int,
        sample_rate: int,
        mel_mean: list[float],
        mel_std: list[float],
        patch: int = 4,
        dim: int = 96,
        heads: int = 4,
        layers: int = 3,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.front = LogMel(sample_rate, len(mel_mean), mel_mean, mel_std)
        self.embed = nn.Conv1d(len(mel_mean), dim, kernel_size=patch, stride=patch)
        self.patch = patch
        self.positions = SinusoidalPositions(dim)
        self.encoder = encoder(dim, heads, layers, dropout)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, waves: Tensor) -> Tensor:
        mels = self.front(waves)  # (B, mels, frames)
        mels = nn.functional.pad(mels, (0, -mels.shape[-1] % self.patch))
        tokens = self.embed(mels).transpose(1, 2)  # (B, frames / patch, dim)
        return self.head(self.norm(self.encoder(self.positions(tokens)).mean(dim=1)))
