"""The training flow's parameters: one pydantic model, from which the flow's signature (the
Prefect UI's form, the deployments) and `mlpipe run`'s options (flows/cli/run.py) are built."""

import functools
import inspect
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from tasks.data.builtin import BUILT_IN
from tasks.infra.vocabulary import (
    NETWORK_FAMILIES,
    BatchSize,
    Epochs,
    Family,
    LearningRate,
    MinDelta,
    NetworkFamily,
    Seed,
    Strategy,
    TimeoutMinutes,
)
from tasks.types import TrainConfig

DATASET_HELP = f"Data set: a name (built in: {', '.join(BUILT_IN)}) or the path of a data set spec (.yaml)"


class FlowParams(BaseModel):
    """A flow's parameters: checked together, with one line for the first bad one."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(BUILT_IN[0], description=DATASET_HELP)  # every flow's first field

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

    @field_validator("backbone", "init_from", mode="before", check_fields=False)
    @classmethod
    def _blank_is_unset(cls, value):
        return None if value == "" else value  # dvc.yaml's stages pass '' for a data set that sets none

    @model_validator(mode="after")
    def _at_most_this_machine(self):
        """The form's `le` is the most any machine may ask for; this is the most this one has (the
        flow checks its own parameters: a run may turn its deployment's schema off). Parallel
        candidates train on Dask's workers, which may be other machines: their devices are theirs."""
        from tasks.infra.machine import capacity

        for name in ("workers", "devices"):
            count = getattr(self, name, 1)
            if count > 1 and not (name == "devices" and getattr(self, "parallel", None)):
                have, what = capacity(gpus=name == "devices")
                if count > have:
                    raise PydanticCustomError(
                        "machine", f"parameter '{name}': this machine has {have} {what} (got {count})"
                    )
        return self

    @field_validator("models", check_fields=False)
    @classmethod
    def _unique(cls, models: list[str]) -> list[str]:
        return list(dict.fromkeys(models))

    @classmethod
    def checked(cls, **values):
        """The parameters, or one line naming the bad one (`parameter 'max_epochs': ... (got 0)`)."""
        from pydantic import ValidationError

        from tasks.infra.errors import one_line

        try:
            return cls(**values)
        except ValidationError as error:
            raise one_line(error, noun="parameter") from None


class PipelineParams(FlowParams):
    """Unset values (None) take their defaults from params.yaml."""

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
    parallel: bool | None = Field(
        None,
        description="Train the candidates at once, as Dask tasks: on params.yaml's parallel.address or "
        "DASK_SCHEDULER_ADDRESS, else on a local cluster",
    )
    backbone: str | None = Field(
        None,
        description="The pretrained family's backbone: a Hugging Face hub id or local folder, or the "
        "models:/<name>-encoder/<version> of `mlpipe pretrain` (empty: params.yaml's families.<modality>.pretrained)",
    )
    init_from: str | None = Field(
        None,
        pattern=r"^models:/[^/@]+(@[\w-]+|/\d+)$",
        description="Start cnn, rnn and transformer from another data set's registered weights of the same "
        "modality and family, with a new head: models:/<name>@<alias> or models:/<name>/<version> (empty: scratch)",
    )


class TuneParams(FlowParams):
    """Unset values (None) take their defaults from params.yaml's `tuning` section."""

    models: list[NetworkFamily] = Field(
        default_factory=lambda: list(NETWORK_FAMILIES),
        min_length=1,
        description="Network families to tune, a study each",
    )
    trials: int | None = Field(
        None,
        ge=1,
        le=10_000,
        description="Trials per family, pruned ones included: the study's total, so a resumed study runs the rest",
    )
    timeout_minutes: TimeoutMinutes | None = Field(None, description="Start no trial after this long, per family")
    max_epochs: Epochs | None = Field(
        None, description="Most epochs per trial (early stopping and pruning may end sooner)"
    )
    workers: int = Field(1, ge=1, le=64, description="Processes that share each study on this machine")
    seed: Seed | None = Field(None, description="Sampling and training seed (each worker adds its number)")


class CompressParams(FlowParams):
    """Unset values (None) take their defaults from params.yaml's `compression` section."""

    family: NetworkFamily | None = Field(None, description="The student's family (empty: compression.students)")
    temperature: float | None = Field(None, gt=0, le=100, description="Softens the teacher's probabilities")
    soft_weight: float | None = Field(None, ge=0, le=1, description="The teacher's share of the student's loss")
    margin: float | None = Field(None, ge=0, lt=1, description="Test accuracy a variant may lose against @champion")
    max_epochs: Epochs | None = Field(None, description="Most epochs for the student (early stopping may end sooner)")
    seed: Seed | None = Field(None, description="The student's training seed and the train/val split")


def flow_parameters(model: type[FlowParams]):
    """A flow body `function(params)` whose flow parameters are the model's fields, one by one:
    each is a top-level flow parameter (`prefect deployment run ... --param max_epochs=2`) with its
    type, range and description in the form. The body gets them checked together
    (`model.checked`), and an error the user can fix (an MlpipeError) ends the run said once
    (`fail_clearly`). Applied below @flow, which reads the signature."""

    def decorate(function):
        @functools.wraps(function)
        def body(**values):
            from tasks.infra.errors import MlpipeError
            from tasks.infra.runs import fail_clearly, filter_failed_task_lines

            filter_failed_task_lines()
            try:
                return function(model.checked(**values))
            except MlpipeError as error:  # bad data, a bad setting, a store out of reach
                return fail_clearly(error)

        parameters = []
        for name, field in model.model_fields.items():
            annotation = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
            default = Field(
                field.get_default(call_default_factory=True),
                description=field.description,
                json_schema_extra={"title": name.replace("_", " ").title()},  # the form's label: "Max Epochs"
            )
            kind = inspect.Parameter.KEYWORD_ONLY
            parameters.append(inspect.Parameter(name, kind, default=default, annotation=annotation))
        returns = inspect.signature(function).return_annotation
        body.__signature__ = inspect.Signature(parameters, return_annotation=returns)
        return body

    return decorate


class PretrainParams(FlowParams):
    """Unset values (None) take their defaults from params.yaml's `pretraining` section (the seed: `seed`)."""

    texts: list[str] = Field(
        default_factory=list,
        description="Unlabelled text files, one text a line, added to the data set's training and validation texts",
    )
    max_epochs: Epochs | None = Field(None, description="Most epochs of masked-language modelling")
    timeout_minutes: TimeoutMinutes | None = Field(
        None, description="Stop the fit after this long and register the encoder it has"
    )
    seed: Seed | None = Field(None, description="Training seed (weights, masking, the held-out texts, train/val split)")

    @field_validator("texts")
    @classmethod
    def _existing_files(cls, texts: list[str]) -> list[str]:
        from tasks.infra.errors import MlpipeError
        from tasks.infra.settings import get_settings
        from tasks.pretraining.corpus import text_files

        try:
            text_files(texts, get_settings().root)
        except MlpipeError as error:
            raise ValueError(str(error)) from None
        return texts
