"""A family's search space (params.yaml's `tuning.spaces`) as Optuna suggestions."""

from tasks.infra.errors import MlpipeError
from tasks.infra.tuning_params import SearchRange


def check_space(project, modality: str, family: str, seed: int) -> None:
    """The family's space exists and each of its keys is one the family takes, with values of the
    right type: its lowest values (and first choices) built into a TrainConfig, before any trial.
    params.yaml's own values must lie in it too: the study's first trial trains them."""
    from tasks.training.config import train_config

    space = project.tuning.space(modality, family)
    lowest = {name: spec.low if isinstance(spec, SearchRange) else spec[0] for name, spec in space.items()}
    train_config(project, modality, family, seed, tuned=lowest)
    defaults = defaults_of(project, modality, family, seed)
    for name, spec in space.items():
        if name not in defaults:
            raise MlpipeError(
                f"params.yaml: tuning.spaces.{modality}.{family}.{name} has no value of its own in params.yaml; "
                f"set families.{modality}.{family}.{name}: the study's first trial trains params.yaml's values"
            )
        value = defaults[name]
        inside = spec.low <= value <= spec.high if isinstance(spec, SearchRange) else value in spec
        if not inside:
            shown = f"[{spec.low}, {spec.high}]" if isinstance(spec, SearchRange) else str(list(spec))
            raise MlpipeError(
                f"params.yaml: tuning.spaces.{modality}.{family}.{name} {shown} leaves out the family's own "
                f"value {value!r}; the study's first trial trains params.yaml's values, so the space must hold them"
            )


def defaults_of(project, modality: str, family: str, seed: int, max_epochs: int | None = None) -> dict:
    """params.yaml's own values of the space's keys: what tuned settings must beat."""
    import inspect

    from models.networks import NETWORKS
    from tasks.infra.params import TrainerKeys
    from tasks.training.config import train_config

    config = train_config(project, modality, family, seed, max_epochs=max_epochs)
    built = inspect.signature(NETWORKS[(modality, family)]).parameters  # a key params.yaml leaves to the network
    current = {name: p.default for name, p in built.items() if p.default is not inspect.Parameter.empty}
    current |= {name: getattr(config, name) for name in TrainerKeys.model_fields}
    current |= {**config.optimiser, **config.network, **config.text}
    # A key set nowhere in params.yaml (a tokenizer setting left to its function) is missing:
    # check_space refuses it.
    return {name: current[name] for name in project.tuning.space(modality, family) if name in current}


def suggest(trial, space: dict) -> dict:
    """One value per key of `space`: a list is a choice among its values, a range a number in it
    (an int range gives ints; `log: true` samples on a log scale)."""
    chosen = {}
    for name, spec in space.items():
        if isinstance(spec, SearchRange):
            if isinstance(spec.low, int) and isinstance(spec.high, int):
                chosen[name] = trial.suggest_int(name, spec.low, spec.high, log=spec.log)
            else:
                chosen[name] = trial.suggest_float(name, float(spec.low), float(spec.high), log=spec.log)
        else:
            chosen[name] = trial.suggest_categorical(name, list(spec))
    return chosen
