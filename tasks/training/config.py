"""A candidate's configuration from params.yaml and the run's own choices (the flow's parameters)."""

from tasks.infra.errors import MlpipeError
from tasks.infra.params import (
    NetworkParams,
    OptimiserKeys,
    ProjectParams,
    TokenizerKeys,
    TrainerKeys,
    raise_as_params_error,
)
from tasks.infra.settings import Settings
from tasks.infra.vocabulary import BASELINE, CLASSICAL_FAMILIES, PRETRAINED, ROCKET
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
    train_rows: int | None = None,
) -> TrainConfig:
    """A network's TrainConfig: the family's section over the `train` section, `tuned` settings
    (a trial's, or those `mlpipe tune` found) over the family's, and the run's choices (None: not
    chosen) over all. The merged section is checked like params.yaml, its network keys against
    the network. `init`: where its weights start (tasks/training/starting.py `start_of`).
    `train_rows`: how many rows it trains on, for `train.min_steps` (None: not applied)."""
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
    config = TrainConfig(
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
    if train_rows is None or max_epochs is not None:  # epochs the run chose itself are kept
        return config
    return at_least(config, project.train.min_steps, train_rows)


def at_least(config: TrainConfig, min_steps: int, train_rows: int) -> TrainConfig:
    """A budget in optimiser steps, not only epochs: a 32-row data set in batches of 16 takes 2
    steps an epoch, so 100 epochs are 200 steps where published recipes take thousands. Epochs
    and patience are stretched by one factor, so early stopping still acts on the same share of
    the schedule."""
    import math
    from dataclasses import replace

    steps = math.ceil(math.ceil(train_rows / config.batch_size) / config.accumulate_grad_batches)
    if config.max_epochs * steps >= min_steps:
        return config
    epochs = min(math.ceil(min_steps / steps), 10_000)
    return replace(config, max_epochs=epochs, patience=math.ceil(config.patience * epochs / config.max_epochs))


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
    for family in (f for f in models if f not in CLASSICAL_FAMILIES):
        own = tuned[family].settings if family in tuned else None
        start = backbone or (project.families_backbone(dataset.modality) if family == PRETRAINED else None)
        init = start_of(family, dataset.modality, start, source, settings, test_rows)
        rows = len(split.train)
        config = train_config(project, dataset.modality, family, seed, **choices, tuned=own, init=init, train_rows=rows)
        configs.append(config)
        check_start(dataset, configs[-1], settings)
    return configs


def classical_configs(project: ProjectParams, modality: str, seed: int, models: list[str]) -> list[BaselineConfig]:
    """The scikit-learn candidates of a run: the baseline (unless params.yaml turns it off and
    --models lacks it), and MiniRocket for sequences (likewise)."""
    configs = []
    if project.selection.baseline or BASELINE in models:
        configs.append(baseline_config(project, modality, seed))
    if ROCKET in models and modality != "sequence":
        raise MlpipeError(f"--models rocket classifies sequences, not {modality} data")
    if modality == "sequence" and (project.selection.rocket or ROCKET in models):
        configs.append(BaselineConfig(seed, project.families[modality].rocket.model_dump(), family=ROCKET))
    return configs


def baseline_config(project: ProjectParams, modality: str, seed: int) -> BaselineConfig:
    return BaselineConfig(seed, project.baseline(modality).model_dump(exclude_none=True))


def check_network_keys(modality: str, family: str, network: dict) -> None:
    """The network keys of families.<modality>.<family> against what that network takes."""
    import inspect

    from models.networks import network_class

    # Set from the data, or from a pretrained backbone's own files.
    data_keys = {"in_channels", "num_classes", "width", "height", "length", "vocab_size", "pad_id", "backbone_config"}
    accepted = set(inspect.signature(network_class(modality, family)).parameters) - data_keys
    if family == "pretrained":
        accepted.add("lora")  # the trainer's adapters (tasks/training/starting.py), not the network's
    others = [*TrainerKeys.model_fields, *OptimiserKeys.model_fields, *TokenizerKeys.model_fields]
    for key in network:
        if key not in accepted:
            raise MlpipeError(
                f"params.yaml: key 'families.{modality}.{family}.{key}' is not a setting of the {modality} {family} "
                f"(it takes {', '.join(sorted(accepted))}, and {', '.join(others)})"
            )
