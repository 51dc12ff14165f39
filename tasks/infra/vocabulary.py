"""The words the spec, params.yaml, the command line and the UI form share, each declared once."""

from typing import Annotated, Literal, get_args

from pydantic import Field

Modality = Literal["image", "sequence", "text"]
MODALITIES: tuple[str, ...] = get_args(Modality)

Format = Literal["csv", "tsv", "parquet", "ucr", "npz", "image-folder"]
FORMATS: tuple[str, ...] = get_args(Format)
FORMATS_OF: dict[str, tuple[str, ...]] = {  # the formats each modality can be read from
    "image": ("csv", "tsv", "parquet", "npz", "image-folder"),
    "sequence": ("csv", "tsv", "parquet", "ucr", "npz"),
    "text": ("csv", "tsv", "parquet"),
}

NETWORK_FAMILIES: tuple[str, ...] = ("cnn", "rnn", "transformer")  # models.networks.NETWORKS builds each
BASELINE = "baseline"  # the classical scikit-learn candidate
ENSEMBLE = "ensemble"  # the mean of the candidates close to the best
FAMILIES: tuple[str, ...] = (*NETWORK_FAMILIES, BASELINE)  # what a run may be asked to train
Family = Literal[FAMILIES]  # for pydantic: one of FAMILIES

# Bounds that params.yaml and a run's parameters (flows/parameters.py) share.
Epochs = Annotated[int, Field(ge=1, le=10_000)]
BatchSize = Annotated[int, Field(ge=1, le=65_536)]
LearningRate = Annotated[float, Field(gt=0, lt=10)]
Seed = Annotated[int, Field(ge=0)]
MinDelta = Annotated[float, Field(ge=0, le=1)]
