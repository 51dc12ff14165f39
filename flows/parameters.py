"""The training flow's parameters: one pydantic model, which the Prefect UI renders as a form."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tasks.params import FAMILIES, Family


class PipelineParams(BaseModel):
    """Unset values (None) take their defaults from params.yaml."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field("digits", description="Built-in data set name (digits) or the path of a data set spec (.yaml)")
    models: list[Family] = Field(
        default_factory=lambda: list(FAMILIES),
        min_length=1,
        description="Model families to train (the scikit-learn baseline joins unless params.yaml turns it off)",
    )
    max_epochs: int | None = Field(
        None, ge=1, le=10_000, description="Most epochs per candidate (early stopping may end sooner)"
    )
    batch_size: int | None = Field(None, ge=1, le=65_536, description="Samples per training batch")
    learning_rate: float | None = Field(None, gt=0, lt=10, description="Peak learning rate of the one-cycle schedule")
    seed: int | None = Field(None, ge=0, description="Training seed (weights, shuffling, train/val split)")
    min_delta: float | None = Field(
        None, ge=0, le=1, description="Accuracy a new version must gain over @champion to replace it"
    )
    warn_only: bool = Field(
        False, description="Train even when validation fails (the run is tagged validation-failed-warn-only)"
    )
    devices: int = Field(1, ge=1, le=64, description="Devices (GPUs, or CPU processes) to train each candidate on")
    strategy: Literal["auto", "ddp"] = Field(
        "auto", description="auto: Lightning's choice (DDP on several devices); ddp: distributed data parallel"
    )

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, name: str) -> str:
        from tasks.datasets import BUILT_IN
        from tasks.settings import get_settings
        from tasks.spec import is_spec_path

        named_spec = get_settings().data_dir / f"{name}.yaml"
        if name not in BUILT_IN and not is_spec_path(name) and not named_spec.exists():
            raise ValueError(
                f"unknown data set {name!r}: built-in data sets are {', '.join(BUILT_IN)}; "
                "otherwise pass the path of a data set spec (.yaml)"
            )
        return name

    @field_validator("models")
    @classmethod
    def _unique(cls, models: list[str]) -> list[str]:
        return list(dict.fromkeys(models))
