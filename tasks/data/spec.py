"""The data set spec: a YAML file that says what a data set is and where its files lie."""

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tasks.infra.errors import MlpipeError, one_line
from tasks.infra.vocabulary import FORMATS_OF, Format, Modality

# A data set's name names files (data/<name>.yaml), the experiment and the registered model.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


def check_name(name: str) -> str:
    """The name, or one line saying why it cannot name a data set (a path would write elsewhere)."""
    import re

    if not re.fullmatch(NAME_PATTERN, name):
        raise MlpipeError(
            f"data set name {name!r} is not allowed: use letters, digits, '_', '-' and '.', "
            "starting with a letter or digit (no path)"
        )
    return name


class CardSpec(BaseModel):
    """What the people who own the data say about models trained on it: every registered
    version's model card repeats it (tasks/registry/card.py)."""

    model_config = ConfigDict(extra="forbid")

    intended_use: str = Field("", description="What the model is for, and for whom")
    limitations: list[str] = Field(default_factory=list, description="Known limits: where it must not be trusted")
    contact: str = Field("", description="Who answers for the data and the model")


class DatasetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="Names the experiment, model and suite")
    modality: Modality = Field(description="What the samples are; it picks the networks and the readers")
    format: Format = Field(description="How the files are read (which formats each modality takes: above)")
    train: Path = Field(description="Training file or folder, relative to the spec")
    test: Path | None = Field(None, description="Test file or folder; else a stratified test_fraction")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="Share of rows held out as test rows when there is no test file")
    label_column: str = Field("label", description="The column of the labels")
    text_column: str | None = Field(None, description="Text: the column of the texts")
    image_shape: tuple[int, int, int] | None = Field(None, description="(C, H, W) of an image table or npz")
    image_size: tuple[int, int] | None = Field(None, description="(H, W) to resize an image folder to")
    pixel_scale: float | None = Field(None, gt=0, description="Raw pixel value that maps to 1.0")
    path_column: str | None = Field(None, description="Audio table: the column of sound files, relative to the table")
    sample_rate: int | None = Field(None, ge=1000, le=192_000, description="Audio: Hz; default the most common")
    clip_seconds: float | None = Field(
        None, ge=0.1, le=600, description="Audio: every clip padded or cropped to this; default 95% of clips fit"
    )
    clip_align: Literal["start", "center"] = Field(
        "start", description="Audio: pad or crop the end (start) or both ends evenly (center)"
    )
    description: str = Field("", description="Free text: where the data comes from")
    card: CardSpec = Field(default_factory=CardSpec)

    @model_validator(mode="after")
    def _fits_together(self) -> "DatasetSpec":
        if self.modality == "text" and not self.text_column and self.format not in ("npz", "image-folder"):
            raise ValueError("text data sets need text_column")
        if self.modality == "audio" and self.format != "audio-folder" and not self.path_column:
            raise ValueError("an audio table needs path_column: the column of sound files, relative to the table")
        allowed = FORMATS_OF[self.modality]
        if self.format not in allowed:
            raise ValueError(f"format {self.format!r} does not fit modality {self.modality!r} (use {sorted(allowed)})")
        return self

    def resolve(self, base: Path) -> "DatasetSpec":
        """Paths relative to the spec's folder made absolute."""
        return self.model_copy(
            update={"train": (base / self.train).resolve(), "test": (base / self.test).resolve() if self.test else None}
        )


def read_spec(path: Path) -> DatasetSpec:
    import yaml

    if not path.is_file():
        raise MlpipeError(f"data set spec {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise MlpipeError(f"data set spec {path} is not valid YAML: {str(error).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise MlpipeError(f"data set spec {path} must be a mapping of keys")
    try:
        spec = DatasetSpec(**raw)
    except ValidationError as error:
        raise one_line(error, f"data set spec {path}") from None
    spec = spec.resolve(path.parent)
    for part in (spec.train, spec.test):
        if part is not None and not part.exists():
            raise MlpipeError(f"data set spec {path}: file {part} does not exist")
    return spec


def is_spec_path(dataset: str) -> bool:
    return dataset.endswith((".yaml", ".yml"))
