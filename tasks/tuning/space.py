"""A family's search space (params.yaml's `tuning.spaces`) as Optuna suggestions."""

from tasks.infra.tuning_params import SearchRange


def check_space(project, modality: str, family: str, seed: int) -> None:
    """The family's space exists and each of its keys is one the family takes, with values of the
    right type: its lowest values (and first choices) built into a TrainConfig, before any trial.
    It need not hold params.yaml's own values: the study's first trial trains those as they are."""
    from tasks.training.config import train_config

    space = project.tuning.space(modality, family)
    lowest = {name: spec.low if isinstance(spec, SearchRange) else spec[0] for name, spec in space.items()}
    train_config(project, modality, family, seed, tuned=lowest)


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
