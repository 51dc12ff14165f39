"""params.yaml's `tuning` section: what `mlpipe tune` searches, per modality and family, and how
long. A key of a space is any key that family's section takes (optimiser, trainer, tokenizer or
network); a trial's values go over the section's own, so they are checked like them."""

from pydantic import Field, model_validator

from tasks.infra.base_params import Section
from tasks.infra.errors import MlpipeError
from tasks.infra.vocabulary import Modality, NetworkFamily


class SearchRange(Section):
    """A number between `low` and `high` (ints when both are ints), on a log scale when `log`."""

    low: int | float
    high: int | float
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self):
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0 (got {self.low})")
        return self


# A choice among values (a list), or a range.
SearchSpace = dict[str, SearchRange | list[int | float | str | bool]]


class TuningParams(Section):
    trials: int = Field(20, ge=1)  # per data set and family: finished and pruned trials count
    timeout_minutes: float | None = Field(None, gt=0)  # per family; none: until the trials are done
    startup_trials: int = Field(5, ge=0)  # random trials before the sampler models, and before pruning
    warmup_epochs: int = Field(3, ge=0)  # epochs a trial runs before it can be pruned
    # The best settings replace params.yaml's when the lower bound of this interval of their gain
    # on the check rows is above zero (a one-sided test at half of 1 - confidence).
    confidence: float = Field(0.9, gt=0, lt=1)
    spaces: dict[Modality, dict[NetworkFamily, SearchSpace]] = Field(default_factory=dict)

    def space(self, modality: str, family: str) -> SearchSpace:
        space = self.spaces.get(modality, {}).get(family)
        if not space:
            raise MlpipeError(f"params.yaml has no search space tuning.spaces.{modality}.{family}")
        return space
