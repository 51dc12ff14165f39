import inspect

import torch
from torch import Tensor, nn

from models.backbone import encoder_from_config, freeze_first, merged, parameter_groups


class PretrainedImage(nn.Module):
    """A Hugging Face vision encoder (ResNet, ConvNeXt, ViT, ...) and a linear head on its pooled
    output. Grey images are repeated to the backbone's channels, then resized and normalised the
    way its image processor does, inside the network, so serving needs nothing else.

    Input: (B, C, H, W) images in [0, 1]. Output: (B, num_classes) logits.
    """

    def __init__(
        self,
        backbone_config: dict,  # the backbone's config.json: the architecture, rebuilt without a hub
        num_classes: int,
        in_channels: int,
        image_size: int = 224,  # the backbone's input size (its image processor's), or smaller to save time
        mean: tuple[float, ...] = (0.485, 0.456, 0.406),  # its normalisation (ImageNet's unless it says)
        std: tuple[float, ...] = (0.229, 0.224, 0.225),
        dropout: float = 0.1,
        freeze_layers: int = 0,  # the stem and this many first stages keep their pretrained weights
    ) -> None:
        super().__init__()
        self.encoder = encoder_from_config(backbone_config)
        self.channels = getattr(self.encoder.config, "num_channels", 3)
        if in_channels not in (1, self.channels):
            raise ValueError(f"images of {in_channels} channels for a backbone of {self.channels}")
        self.image_size = image_size
        # A ViT's position table is for its own size: interpolated for another (image_size: 64 on a CPU).
        takes = inspect.signature(self.encoder.forward).parameters
        self.options = {"interpolate_pos_encoding": True} if "interpolate_pos_encoding" in takes else {}
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        with torch.no_grad():  # the pooled features' width, whatever the architecture
            features = self._features(torch.zeros(1, self.channels, image_size, image_size)).shape[1]
        freeze_first(self.encoder, freeze_layers)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(features, num_classes))

    def _features(self, pixels: Tensor) -> Tensor:
        out = self.encoder(pixel_values=pixels, **self.options)
        pooled = getattr(out, "pooler_output", None)
        if pooled is None:  # no pooler: the mean of the last layer over its positions
            hidden = out.last_hidden_state
            pooled = hidden.mean(dim=1) if hidden.ndim == 3 else hidden.mean(dim=(2, 3))
        return pooled.flatten(1)  # (B, features)

    def forward(self, images: Tensor) -> Tensor:
        x = images.expand(-1, self.channels, -1, -1) if images.shape[1] == 1 else images  # (B, C, H, W)
        x = nn.functional.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        return self.head(self._features((x - self.mean) / self.std))

    def parameter_groups(self, learning_rate: float, layer_decay: float, weight_decay: float) -> list:
        return parameter_groups(self, learning_rate, layer_decay, weight_decay)

    def merge_adapters(self) -> "PretrainedImage":
        self.encoder = merged(self.encoder)
        return self
