"""A candidate's configuration from params.yaml and the run's own choices (the flow's parameters)."""

from tasks.infra.params import (
    NetworkParams,
    OptimiserKeys,
    ProjectParams,
    TokenizerKeys,
    TrainerKeys,
    check_network_keys,
    raise_as_params_error,
)
from tasks.types import BaselineConfig, TrainConfig


def train_config(
    project: ProjectParams,
    modality: str,
    family: str,
    seed: int,
    max_epochs: int | None = None,
    batch_size: int | None = None,
    learning_rate: float | None = None,
    devices: int = TrainConfig.devices,
    strategy: str = TrainConfig.strategy,
    tuned: dict | None = None,
    tuned_from: str = "tuned settings",
    init: dict | None = None,
) -> TrainConfig:
    """A network's TrainConfig: the family's section over the `train` section, `tuned` settings
    (a trial's, or those `mlpipe tune` found) over the family's, and the run's choices (None: not
    chosen) over all. The merged section is checked like params.yaml, its network keys against
    the network. `init`: where its weights start (tasks/training/starting.py `start_of`)."""
    section = project.network(modality, family)
    if tuned:
        where = f"{tuned_from} of {modality} {family}"
        with raise_as_params_error(where):
            section = NetworkParams.model_validate(section.model_dump(exclude_none=True) | tuned)
    check_network_keys(modality, family, section.network)
    trainer = project.train.model_dump(include=set(TrainerKeys.model_fields), exclude_none=True)
    trainer |= section.part(TrainerKeys)
    trainer |= {k: v for k, v in {"max_epochs": max_epochs, "batch_size": batch_size}.items() if v is not None}
    optimiser = section.part(OptimiserKeys)
    if learning_rate is not None:
        optimiser["learning_rate"] = learning_rate
    return TrainConfig(
        family=family,
        seed=seed,
        optimiser=optimiser,
        network=section.network,
        text=section.part(TokenizerKeys),
        devices=devices,
        strategy=strategy,
        init=init or {},
        **trainer,
    )


def baseline_config(project: ProjectParams, modality: str, seed: int) -> BaselineConfig:
    return BaselineConfig(seed, project.baseline(modality).model_dump(exclude_none=True))
