"""The words the spec, params.yaml, the command line and the UI form share, each declared once."""

from typing import Annotated, Literal

from pydantic import Field

Modality = Literal["image", "sequence", "text", "audio"]
Format = Literal["csv", "tsv", "parquet", "ucr", "npz", "image-folder", "audio-folder"]
FORMATS_OF: dict[str, tuple[str, ...]] = {  # the formats each modality can be read from
    "image": ("csv", "tsv", "parquet", "npz", "image-folder"),
    "sequence": ("csv", "tsv", "parquet", "ucr", "npz"),
    "text": ("csv", "tsv", "parquet"),
    "audio": ("csv", "tsv", "parquet", "audio-folder"),  # a table lists the files in its path_column
}

NETWORK_FAMILIES: tuple[str, ...] = ("cnn", "rnn", "transformer")  # trained from scratch (or --init-from)
PRETRAINED = "pretrained"  # a pretrained backbone (`backbone:`) fine-tuned with a new head: text and image
TRAINED_FAMILIES: tuple[str, ...] = (*NETWORK_FAMILIES, PRETRAINED)  # models.networks.NETWORKS builds each
BASELINE = "baseline"  # the classical scikit-learn candidate
ROCKET = "rocket"  # MiniRocket features and a ridge classifier (models/rocket.py): sequences
CLASSICAL_FAMILIES: tuple[str, ...] = (BASELINE, ROCKET)  # fitted once, no epochs: a scikit-learn estimator each
ENSEMBLE = "ensemble"  # the mean of the candidates close to the best
FAMILIES: tuple[str, ...] = (*TRAINED_FAMILIES, *CLASSICAL_FAMILIES)  # what a run may be asked to train
Family = Literal[FAMILIES]  # for pydantic: one of FAMILIES
NetworkFamily = Literal[NETWORK_FAMILIES]  # a family `mlpipe tune` can search

Schedule = Literal["one_cycle", "linear"]  # the learning rate's: one-cycle, or linear warm-up then linear decay
Strategy = Literal["auto", "ddp"]  # Lightning's: auto picks DDP on several devices
Monitor = Literal["val/loss", "val/accuracy", "val/f1_macro"]  # picks the checkpoint, stops early
ClassWeighting = Literal["sqrt", "none"]  # sqrt: square-rooted inverse class frequency in the loss

# Bounds that params.yaml and a run's parameters (flows/parameters.py) share.
Epochs = Annotated[int, Field(ge=1, le=10_000)]
BatchSize = Annotated[int, Field(ge=1, le=65_536)]
LearningRate = Annotated[float, Field(gt=0, lt=10)]
Seed = Annotated[int, Field(ge=0)]
MinDelta = Annotated[float, Field(ge=0, le=1)]
TimeoutMinutes = Annotated[float, Field(gt=0, le=7 * 24 * 60)]  # a week
