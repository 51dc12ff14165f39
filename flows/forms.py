"""What the Prefect UI's form of a deployment shows beside each field: its range, and the value
params.yaml gives it when left empty (flows/deployments.py writes it into the flow's schema)."""

import functools

# The params.yaml value an unset field takes, by where it lies in the file (learning_rate: per family).
FROM_PARAMS_YAML = {
    "max_epochs": ("train", "max_epochs"),
    "batch_size": ("train", "batch_size"),
    "seed": ("seed",),
    "min_delta": ("promotion", "min_delta"),
    "trials": ("tuning", "trials"),
    "timeout_minutes": ("tuning", "timeout_minutes"),
    "parallel": ("parallel", "enabled"),
    "temperature": ("compression", "temperature"),
    "soft_weight": ("compression", "soft_weight"),
    "margin": ("compression", "margin"),
}


def form_schema(fields: dict, project: dict, known_datasets: list[str], own: dict | None = None) -> None:
    """What the Prefect UI's form shows, written into the flow's parameter schema when a deployment
    is made: each field's allowed range, for a field left empty the value params.yaml gives it, and
    the known data sets to pick from (a spec's path may still be typed in). `own`: where a flow's
    fields lie in params.yaml when not where FROM_PARAMS_YAML says (PRETRAIN_FROM_PARAMS_YAML)."""
    own = own or {}
    for name, field in fields.items():
        hints = []
        for bounds in [field, *field.get("anyOf", [])]:
            low = bounds.get("minimum", bounds.get("exclusiveMinimum"))
            high = bounds.get("maximum", bounds.get("exclusiveMaximum"))
            if low is not None or high is not None:
                open_low, open_high = "exclusiveMinimum" in bounds, "exclusiveMaximum" in bounds
                hints.append(f"{'>' if open_low else '>='} {low}" if low is not None else "")
                hints.append(f"{'<' if open_high else '<='} {high}" if high is not None else "")
        if name in own:
            hints.append(f"empty: params.yaml's {functools.reduce(lambda node, key: node[key], own[name], project)}")
        elif name in FROM_PARAMS_YAML or name == "learning_rate":
            hints.append("empty: " + _params_yaml_value(project, name))
        if hints := [h for h in hints if h]:
            field["description"] = f"{field['description']} ({', '.join(hints)})"
    dataset = fields.get("dataset")
    if dataset is not None and "enum" not in dataset:  # a deployment's own data set is frozen: one choice
        choice = {"title": "Known data set", "type": "string", "enum": known_datasets}
        dataset.pop("type", None)
        dataset["anyOf"] = [choice, {"title": "Path of a data set spec (.yaml)", "type": "string"}]


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
        return f"params.yaml's, per family ({spread})" if spread else "params.yaml's: none"
    return f"params.yaml's {value}" + (f"; families that set their own: {spread}" if spread else "")


# pretraining's own params.yaml values of the fields that FROM_PARAMS_YAML maps elsewhere.
PRETRAIN_FROM_PARAMS_YAML = {
    "max_epochs": ("pretraining", "max_epochs"),
    "timeout_minutes": ("pretraining", "timeout_minutes"),
}
