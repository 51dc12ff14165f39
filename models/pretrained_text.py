from torch import Tensor, nn

from models.backbone import encoder_from_config, freeze_first, mean_pool, merged, parameter_groups


class PretrainedText(nn.Module):
    """A Hugging Face text encoder (BERT, RoBERTa, ... or `mlpipe pretrain`'s) and a linear head on
    its pooled output: the mean of the last layer over the real tokens.

    Input: (B, L) token ids of the backbone's own tokenizer, pad_id where there is none.
    Output: (B, num_classes) logits.
    """

    def __init__(
        self,
        backbone_config: dict,  # the backbone's config.json: the architecture, rebuilt without a hub
        num_classes: int,
        pad_id: int = 0,
        dropout: float = 0.1,
        freeze_layers: int = 0,  # embeddings and this many first blocks keep their pretrained weights
    ) -> None:
        super().__init__()
        self.pad_id = pad_id
        self.encoder = encoder_from_config(backbone_config)
        freeze_first(self.encoder, freeze_layers)
        hidden = self.encoder.config.hidden_size
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, num_classes))

    def forward(self, tokens: Tensor) -> Tensor:
        mask = tokens != self.pad_id  # (B, L)
        hidden = self.encoder(input_ids=tokens, attention_mask=mask.long()).last_hidden_state  # (B, L, D)
        return self.head(mean_pool(hidden, mask))

    def parameter_groups(self, learning_rate: float, layer_decay: float, weight_decay: float) -> list:
        return parameter_groups(self, learning_rate, layer_decay, weight_decay)

    def merge_adapters(self) -> "PretrainedText":
        self.encoder = merged(self.encoder)
        return self
