"""Build a network from its modality, family and keyword arguments.

The registered MLflow model stores (family, kwargs, state_dict) and rebuilds the network with
`build_network`, so serving needs torch and this package, not Lightning.
"""

from typing import Any

import numpy as np
import torch
from torch import nn

from models.audio import AudioCNN, AudioRNN, AudioTransformer
from models.cnn import ImageCNN
from models.image import ImageRNN, ImageTransformer
from models.sequence import SequenceCNN, SequenceRNN, SequenceTransformer
from models.text import TextCNN, TextRNN, TextTransformer

# (modality, family) -> network class
NETWORKS: dict[tuple[str, str], type[nn.Module]] = {
    ("image", "cnn"): ImageCNN,
    ("image", "rnn"): ImageRNN,
    ("image", "transformer"): ImageTransformer,
    ("sequence", "cnn"): SequenceCNN,
    ("sequence", "rnn"): SequenceRNN,
    ("sequence", "transformer"): SequenceTransformer,
    ("text", "cnn"): TextCNN,
    ("text", "rnn"): TextRNN,
    ("text", "transformer"): TextTransformer,
    ("audio", "cnn"): AudioCNN,
    ("audio", "rnn"): AudioRNN,
    ("audio", "transformer"): AudioTransformer,
}
# Imported when built: they load transformers, which a served cnn's environment need not have.
PRETRAINED_NETWORKS = {
    ("image", "pretrained"): "models.pretrained_image:PretrainedImage",
    ("text", "pretrained"): "models.pretrained_text:PretrainedText",
}


def network_class(modality: str, family: str) -> type[nn.Module]:
    if (modality, family) in NETWORKS:
        return NETWORKS[(modality, family)]
    if (modality, family) in PRETRAINED_NETWORKS:
        import importlib

        module, name = PRETRAINED_NETWORKS[(modality, family)].split(":")
        return getattr(importlib.import_module(module), name)
    known = ", ".join(f"{m}/{f}" for m, f in [*NETWORKS, *PRETRAINED_NETWORKS])
    raise ValueError(f"no {family!r} network for {modality!r} data (known: {known})")


def shape_kwargs(info: dict, family: str, num_classes: int) -> dict[str, Any]:
    """The keyword arguments fixed by the data rather than chosen as hyper-parameters (a pretrained
    backbone adds its own: tasks/training/backbones.py)."""
    modality = info["modality"]
    if modality == "image":
        channels, height, width = info["image_shape"]
        kwargs = {"in_channels": channels, "num_classes": num_classes}
        if family == "rnn":
            kwargs["width"] = width
        if family == "transformer":
            kwargs |= {"height": height, "width": width}
        return kwargs
    if modality == "sequence":
        channels = info.get("channels", 1)
        kwargs = {"in_channels": channels, "num_classes": num_classes}
        if family == "rnn":
            kwargs["length"] = len(info["feature_columns"]) // channels
        return kwargs
    if modality == "audio":  # the log-mel front end's rate and band statistics (tasks/training/features.py)
        return {"num_classes": num_classes, "sample_rate": info["sample_rate"]} | {
            k: info[k] for k in ("mel_mean", "mel_std")
        }
    if modality == "text":
        if family == "pretrained":
            return {"num_classes": num_classes, "pad_id": info["pad_id"]}
        return {"vocab_size": info["vocab_size"], "num_classes": num_classes}
    raise ValueError(f"unknown modality {modality!r}")


def build_network(modality: str, family: str, **kwargs: Any) -> nn.Module:
    return network_class(modality, family)(**kwargs)


def predict_probabilities(network: nn.Module, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """(N, ...) network inputs -> (N, num_classes) softmax probabilities, in batches, on the CPU."""
    network.eval()
    outputs = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            logits = network(torch.as_tensor(x[start : start + batch_size]))  # (B, num_classes)
            outputs.append(torch.softmax(logits.float(), dim=1).numpy())
    return np.concatenate(outputs) if outputs else np.zeros((0, 0), dtype=np.float32)


def estimator_probabilities(estimator: Any, x: Any, num_classes: int) -> np.ndarray:
    """A scikit-learn classifier's predict_proba over class indices, with a column for every class,
    also those its training rows lacked (a class seen only in an explicit test file)."""
    probabilities = np.zeros((len(x), num_classes), dtype=np.float64)
    probabilities[:, estimator.classes_] = estimator.predict_proba(x)
    return probabilities
