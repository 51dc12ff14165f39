"""The training flow's parameters: one pydantic model, which the Prefect UI renders as a form and
from which `mlpipe run` builds its options (flows/cli/run.py): one surface for both, and the deployments."""

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tasks.data.builtin import BUILT_IN
from tasks.infra.vocabulary import NETWORK_FAMILIES, BatchSize, Epochs, Family, LearningRate, MinDelta, Seed, Strategy
from tasks.types import TrainConfig

DATASET_HELP = f"Data set: a name (built in: {', '.join(BUILT_IN)}) or the path of a data set spec (.yaml)"


class PipelineParams(BaseModel):
    """Unset values (None) take their defaults from params.yaml."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(BUILT_IN[0], description=DATASET_HELP)
    models: list[Family] = Field(
        default_factory=lambda: list(NETWORK_FAMILIES),
        min_length=1,
        description="Model families to train (the scikit-learn baseline joins unless params.yaml turns it off)",
    )
    max_epochs: Epochs | None = Field(None, description="Most epochs per candidate (early stopping may end sooner)")
    batch_size: BatchSize | None = Field(None, description="Samples per training batch")
    learning_rate: LearningRate | None = Field(None, description="Peak learning rate of the one-cycle schedule")
    seed: Seed | None = Field(None, description="Training seed (weights, shuffling, train/val split)")
    min_delta: MinDelta | None = Field(
        None, description="Accuracy a new version must gain over @champion to replace it"
    )
    warn_only: bool = Field(
        False, description="Train even when validation fails (the run is tagged validation-failed-warn-only)"
    )
    devices: int = Field(
        TrainConfig.devices, ge=1, le=64, description="Devices (GPUs, or CPU processes) to train each candidate on"
    )
    strategy: Strategy = Field(
        TrainConfig.strategy,
        description="auto: Lightning's choice (DDP on several devices); ddp: distributed data parallel",
    )

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, name: str) -> str:
        from tasks.data.loading import spec_path_of
        from tasks.infra.errors import MlpipeError
        from tasks.infra.settings import get_settings

        try:
            spec_path_of(name, get_settings())
        except MlpipeError as error:
            raise ValueError(str(error)) from None
        return name

    @field_validator("models")
    @classmethod
    def _unique(cls, models: list[str]) -> list[str]:
        return list(dict.fromkeys(models))
