"""The training flow's parameters: one pydantic model, which the Prefect UI renders as a form and
from which `mlpipe run` builds its options (flows/cli/run.py): one surface for both, and the deployments."""

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tasks.data.builtin import BUILT_IN
from tasks.infra.vocabulary import NETWORK_FAMILIES, BatchSize, Epochs, Family, LearningRate, MinDelta, Seed, Strategy
from tasks.types import TrainConfig

# The params.yaml value an unset field takes, by where it lies in the file (learning_rate: per family).
FROM_PARAMS_YAML = {
    "max_epochs": ("train", "max_epochs"),
    "batch_size": ("train", "batch_size"),
    "seed": ("seed",),
    "min_delta": ("promotion", "min_delta"),
}


def _form_hints(schema: dict) -> None:
    """What the Prefect UI's form says beside each field: its allowed range, and for a field left
    empty the value params.yaml gives it (read when the deployment's schema is made, not on import)."""
    from tasks.infra.errors import MlpipeError
    from tasks.infra.params import load_params
    from tasks.infra.settings import get_settings

    try:
        project = load_params(get_settings()).model_dump()
    except MlpipeError:
        project = {}
    for name, field in schema.get("properties", {}).items():
        hints = []
        for bounds in [field, *field.get("anyOf", [])]:
            low = bounds.get("minimum", bounds.get("exclusiveMinimum"))
            high = bounds.get("maximum", bounds.get("exclusiveMaximum"))
            if low is not None or high is not None:
                open_low, open_high = "exclusiveMinimum" in bounds, "exclusiveMaximum" in bounds
                hints.append(f"{'>' if open_low else '>='} {low}" if low is not None else "")
                hints.append(f"{'<' if open_high else '<='} {high}" if high is not None else "")
        if project and (name in FROM_PARAMS_YAML or name == "learning_rate"):
            hints.append("empty: " + _params_yaml_value(project, name))
        if hints := [h for h in hints if h]:
            field["description"] = f"{field['description']} ({', '.join(hints)})"


def _params_yaml_value(project: dict, name: str) -> str:
    """What params.yaml gives an unset field: its value, and the families' own where they set one."""
    where = FROM_PARAMS_YAML.get(name)
    value = None
    if where is not None:
        value = project
        for key in where:
            value = value[key]
    families = {
        section[name]
        for sections in project["families"].values()
        for section in sections.values()
        if isinstance(section, dict) and section.get(name) is not None
    }
    others = sorted(families - {value})
    spread = "" if not others else str(others[0]) if len(others) == 1 else f"{others[0]} to {others[-1]}"
    if value is None:
        return f"params.yaml's, per family ({spread})"
    return f"params.yaml's {value}" + (f"; families that set their own: {spread}" if spread else "")


DATASET_HELP = f"Data set: a name (built in: {', '.join(BUILT_IN)}) or the path of a data set spec (.yaml)"


class PipelineParams(BaseModel):
    """Unset values (None) take their defaults from params.yaml."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_form_hints)

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
