"""params.yaml's `pretraining` section (`mlpipe pretrain`, tasks/pretraining)."""

from pydantic import Field, model_validator

from tasks.infra.base_params import Section
from tasks.infra.vocabulary import BatchSize, Epochs, LearningRate


class PretrainingParams(Section):
    """A BERT-style encoder trained from scratch by masked-language modelling on a data set's texts."""

    vocab_size: int = Field(8000, ge=50)  # WordPiece pieces learned from the corpus (fewer when it is small)
    max_length: int = Field(64, ge=8, le=512)  # tokens per text, [CLS] and [SEP] included; longer texts are cut
    hidden: int = Field(256, ge=8)  # width of every layer; a multiple of `heads`
    layers: int = Field(4, ge=1, le=48)  # Transformer blocks of the encoder
    heads: int = Field(4, ge=1)  # attention heads per block
    intermediate: int = Field(1024, ge=8)  # width of each layer's feed-forward block (BERT's 4 x hidden)
    mask_probability: float = Field(0.15, gt=0, lt=1)  # share of the tokens the model must restore (BERT's)
    learning_rate: LearningRate = 5e-4  # peak, after the warm-up
    weight_decay: float = Field(0.01, ge=0)  # AdamW's, on weights only: not on biases or LayerNorm
    warmup_fraction: float = Field(0.06, ge=0, lt=1)  # share of the steps the learning rate rises over
    batch_size: BatchSize = 64  # texts per step
    max_epochs: Epochs = 10
    timeout_minutes: float = Field(60, gt=0)  # the fit stops after this long, with the weights it has
    lowercase: bool = True  # BertNormalizer's; false keeps case, which helps where case carries meaning

    @model_validator(mode="after")
    def _heads_divide_hidden(self):
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be a multiple of heads ({self.heads})")
        return self
