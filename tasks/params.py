"""Hyper-parameter defaults from params.yaml (the project's, else the one shipped with mlpipe)."""

from pathlib import Path

import yaml

from tasks.errors import MlpipeError
from tasks.settings import CODE_ROOT, Settings

# Keys of a family's section that configure the optimiser or the trainer, or the tokenizer;
# every other key goes to the network.
OPTIMISER_KEYS = ("learning_rate", "weight_decay")
TRAINER_KEYS = ("max_epochs", "batch_size", "patience", "monitor", "class_weighting")
TEXT_KEYS = ("vocab_size", "max_length", "lowercase")


def load_params(settings: Settings) -> dict:
    for path in (settings.root / "params.yaml", CODE_ROOT / "params.yaml"):
        if path.exists():
            return _read(path)
    raise MlpipeError(f"no params.yaml in {settings.root} or {CODE_ROOT}")


def family_params(params: dict, modality: str, family: str) -> dict[str, dict]:
    """One family's settings on one modality, split into optimiser, trainer, text and network.
    Trainer settings start from the `train` section and the family may override them."""
    try:
        section = dict(params["families"][modality][family] or {})
    except (KeyError, TypeError):
        raise MlpipeError(f"params.yaml has no section families.{modality}.{family}") from None
    optimiser = {k: section.pop(k) for k in OPTIMISER_KEYS if k in section}
    trainer = dict(params["train"]) | {k: section.pop(k) for k in TRAINER_KEYS if k in section}
    text = {k: section.pop(k) for k in TEXT_KEYS if k in section}
    return {"optimiser": optimiser, "trainer": trainer, "text": text, "network": section}


def _read(path: Path) -> dict:
    try:
        params = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise MlpipeError(f"{path} is not valid YAML: {error}".splitlines()[0]) from None
    if not isinstance(params, dict):
        raise MlpipeError(f"{path} must hold a mapping of parameters")
    return params
