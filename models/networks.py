"""Build a network from its family name and keyword arguments.

The registered MLflow model stores (family, kwargs, state_dict) and rebuilds the network with
`build_network`, so serving needs torch and this package, not Lightning.
"""

from typing import Any

from torch import nn

from models.cnn import ImageCNN

# (modality, family) -> network class
NETWORKS: dict[tuple[str, str], type[nn.Module]] = {
    ("image", "cnn"): ImageCNN,
}


def build_network(modality: str, family: str, **kwargs: Any) -> nn.Module:
    try:
        network_class = NETWORKS[(modality, family)]
    except KeyError:
        known = ", ".join(f"{m}/{f}" for m, f in NETWORKS)
        raise ValueError(f"no {family!r} network for {modality!r} data (known: {known})") from None
    return network_class(**kwargs)
