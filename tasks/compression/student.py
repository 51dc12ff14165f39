"""How big the student is: the widest network of its family, at most `1 / size_ratio` of the
champion's parameters.

The student's settings start from params.yaml (the family's section with compression.students'
over it) and its width keys (channels, embed_dim, hidden, dim) shrink together, by a factor from
WIDTH_FACTORS, until the network fits. The champion's size sets the budget, not a fixed number:
a champion of a million parameters gets a student of a quarter million, one of ten thousand a
student of 2,500. Counting parameters builds the network only; nothing is trained to choose.
"""

import dataclasses

from tasks.types import Dataset, TrainConfig

WIDTH_KEYS = ("channels", "embed_dim", "hidden", "dim")
WIDTH_FACTORS = (1.0, 0.75, 0.5, 0.375, 0.25, 0.1875, 0.125, 0.0625)
MIN_WIDTH = 4


def parameters_of(dataset: Dataset, config: TrainConfig) -> int:
    """The parameters a network of `config` would have on this data set."""
    from models.networks import build_network, shape_kwargs

    info = dataset.preprocessing()
    if dataset.modality == "text":
        info["vocab_size"] = config.text.get("vocab_size", 8000)  # at most: the tokenizer may learn fewer
    if dataset.modality == "audio":  # the band statistics change no parameter count
        from models.audio import N_MELS

        info |= {"mel_mean": [0.0] * N_MELS, "mel_std": [1.0] * N_MELS}
    kwargs = shape_kwargs(info, config.family, len(dataset.classes)) | config.network
    network = build_network(dataset.modality, config.family, **kwargs)
    return int(sum(p.numel() for p in network.parameters()))


def sized(dataset: Dataset, config: TrainConfig, budget: int) -> TrainConfig:
    """`config` with its width keys scaled by the largest factor whose network has at most
    `budget` parameters (the smallest factor when none has)."""
    defaults = _network_defaults(dataset.modality, config.family)
    widths = {k: config.network.get(k, defaults.get(k)) for k in WIDTH_KEYS if k in config.network or k in defaults}
    heads = config.network.get("heads", defaults.get("heads", 1))
    candidate = config
    for factor in WIDTH_FACTORS:
        network = dict(config.network)
        for key, width in widths.items():
            step = heads if key == "dim" else 1  # a transformer's width is a multiple of its heads
            network[key] = max(MIN_WIDTH, step, round(width * factor / step) * step)
        candidate = dataclasses.replace(config, network=network)
        if parameters_of(dataset, candidate) <= budget:
            return candidate
    return candidate


def _network_defaults(modality: str, family: str) -> dict:
    import inspect

    from models.networks import NETWORKS

    parameters = inspect.signature(NETWORKS[(modality, family)]).parameters.values()
    return {p.name: p.default for p in parameters if isinstance(p.default, int) and not isinstance(p.default, bool)}
