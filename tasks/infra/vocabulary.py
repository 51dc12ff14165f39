"""The words the spec, params.yaml, the command line and the UI form share, each declared once."""

from typing import Literal, get_args

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
