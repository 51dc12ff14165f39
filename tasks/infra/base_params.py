"""The base of params.yaml's sections (tasks/infra/params.py)."""

from pydantic import BaseModel, ConfigDict, model_validator


class Section(BaseModel):
    # Strict: `learning_rate: 5e-4` is a string to YAML, `batch_size: "64"` a string, `max_epochs:
    # true` a bool; each is refused here rather than reaching the optimiser or the trainer.
    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _null_is_unset(cls, values):
        return {k: v for k, v in values.items() if v is not None} if isinstance(values, dict) else values
