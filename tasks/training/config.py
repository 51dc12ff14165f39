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
from tasks.infra.settings import Settings
from tasks.infra.vocabulary import BASELINE, PRETRAINED
from tasks.types import BaselineConfig, Dataset, Split, TrainConfig


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


def network_configs(
    project: ProjectParams,
    dataset: Dataset,
    split: Split,
    seed: int,
    settings: Settings,
    choices: dict,
    tuned: dict,
    models: list[str],
    backbone: str | None = None,
    init_from: str | None = None,
) -> list[TrainConfig]:
    """A TrainConfig for each network family of `models`, with its starting point, each checked
    before anything trains: the pretrained family's backbone (`backbone`, else params.yaml's) and
    --init-from's version for the families trained from scratch. `tuned`: `mlpipe tune`'s settings
    per family (tasks/infra/tuned.py); `choices`: the run's (train_config's keyword arguments)."""
    from tasks.data.splitting import test_rows_digest
    from tasks.training.starting import check_start, start_of, transfer_source

    source = transfer_source(init_from, models, dataset.modality, settings)
    test_rows = (dataset.name, test_rows_digest(dataset, split))  # an encoder pretrained on them must share them
    configs = []
    for family in (f for f in models if f != BASELINE):
        own = tuned[family].settings if family in tuned else None
        start = backbone or (project.families_backbone(dataset.modality) if family == PRETRAINED else None)
        init = start_of(family, dataset.modality, start, source, settings, test_rows)
        configs.append(train_config(project, dataset.modality, family, seed, **choices, tuned=own, init=init))
        check_start(dataset, configs[-1], settings)
    return configs


def baseline_config(project: ProjectParams, modality: str, seed: int) -> BaselineConfig:
    return BaselineConfig(seed, project.baseline(modality).model_dump(exclude_none=True))
