"""A family's search space (params.yaml's `tuning.spaces`) as Optuna suggestions."""

from tasks.infra.tuning_params import SearchRange


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
