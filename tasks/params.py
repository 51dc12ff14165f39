"""Hyper-parameter defaults from params.yaml (the project's, else the one shipped with mlpipe),
checked against one typed model when read: a bad value, an unknown key or family is refused
naming the key, before anything runs."""

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tasks.errors import MlpipeError
from tasks.settings import CODE_ROOT, Settings
from tasks.spec import Modality

Family = Literal["cnn", "rnn", "transformer", "baseline"]
FAMILIES: tuple[str, ...] = ("cnn", "rnn", "transformer")  # the networks; the baseline joins by params.yaml

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
    if family != "baseline":
        check_network_keys(modality, family, section)
    return {"optimiser": optimiser, "trainer": trainer, "text": text, "network": section}


def _read(path: Path) -> dict:
    try:
        params = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise MlpipeError(f"{path} is not valid YAML: {error}".splitlines()[0]) from None
    if not isinstance(params, dict):
        raise MlpipeError(f"{path} must hold a mapping of parameters")
    try:
        ProjectParams.model_validate(params)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        got = "" if first["type"] in ("missing", "extra_forbidden") else f" (got {first.get('input')!r})"
        raise MlpipeError(f"{path}: key '{key}': {message}{got}") from None
    return params


class _Section(BaseModel):
    # Strict: `learning_rate: 5e-4` is a string to YAML, `batch_size: "64"` a string, `max_epochs:
    # true` a bool; each is refused here rather than reaching the optimiser or the trainer.
    model_config = ConfigDict(extra="forbid", strict=True)


class SplitParams(_Section):
    test_fraction: float = Field(gt=0, lt=1)
    val_fraction: float = Field(gt=0, lt=1)
    seed: int = Field(ge=0)


class _TrainerKeys(_Section):
    """What the `train` section sets and a family may override (TRAINER_KEYS)."""

    max_epochs: int = Field(None, ge=1, le=10_000)
    batch_size: int = Field(None, ge=1, le=65_536)
    patience: int = Field(None, ge=1)
    monitor: Literal["val/loss", "val/accuracy", "val/f1_macro"] = None
    class_weighting: Literal["sqrt", "none"] = None


class TrainerParams(_TrainerKeys):
    """The `train` section: every run needs these three."""

    max_epochs: int = Field(ge=1, le=10_000)
    batch_size: int = Field(ge=1, le=65_536)
    patience: int = Field(ge=1)
    timeout_minutes: float = Field(None, gt=0)  # for every candidate of a run


class NetworkParams(_TrainerKeys):
    """A network family's section: optimiser, trainer and tokenizer keys are checked here; the
    rest go to the network, whose constructor checks them (`check_network_keys`)."""

    model_config = ConfigDict(extra="allow", strict=True)
    learning_rate: float = Field(None, gt=0, lt=10)
    weight_decay: float = Field(None, ge=0)
    vocab_size: int = Field(None, ge=10)
    max_length: int = Field(None, ge=1)
    lowercase: bool = None


class BaselineParams(_Section):
    C: float = Field(None, gt=0)
    max_kernel_rows: int = Field(None, ge=0)  # image: an RBF SVC up to this many rows
    neighbours: int = Field(None, ge=1)  # sequence: k of k-nearest-neighbour
    ngrams: list[int] = Field(None, min_length=2, max_length=2)  # text: TF-IDF word n-gram range


class FamilyParams(_Section):
    cnn: NetworkParams | None = None
    rnn: NetworkParams | None = None
    transformer: NetworkParams | None = None
    baseline: BaselineParams | None = None


class ChecksParams(_Section):
    max_duplicate_fraction: float = Field(None, ge=0, le=1)
    max_leakage_fraction: float = Field(None, ge=0, le=1)
    min_class_count: int = Field(None, ge=1)
    max_text_chars: int = Field(None, ge=1)
    max_blank_fraction: float = Field(None, ge=0, le=1)


class DriftParams(_Section):
    action: Literal["fail", "warn"] = None
    label_shift: float = Field(None, ge=0, le=1)
    feature_psi: float = Field(None, ge=0)
    text_length_psi: float = Field(None, ge=0)
    oov_rate: float = Field(None, ge=0, le=1)


class ValidationParams(_Section):
    checks: ChecksParams | None = None
    drift: DriftParams | None = None


class PromotionParams(_Section):
    min_delta: float = Field(None, ge=0, le=1)
    bootstrap_samples: int = Field(None, ge=100)
    confidence: float = Field(None, gt=0, lt=1)
    seed: int = Field(None, ge=0)


class SelectionParams(_Section):
    baseline: bool = None
    ensemble: bool = None


class DatasetEntry(_Section):
    modality: Modality
    models: str = Field(pattern=r"^(cnn|rnn|transformer|baseline)(,(cnn|rnn|transformer|baseline))*$")


class ProjectParams(_Section):
    seed: int = Field(ge=0)
    split: SplitParams
    train: TrainerParams
    families: dict[Modality, FamilyParams]
    selection: SelectionParams | None = None
    validation: ValidationParams | None = None
    promotion: PromotionParams | None = None
    schedules: dict[str, str] | None = None  # data set -> cron
    datasets: dict[str, DatasetEntry] | None = None


def check_network_keys(modality: str, family: str, network: dict) -> None:
    """The network keys of families.<modality>.<family> against what that network takes."""
    import inspect

    from models.networks import NETWORKS

    data_keys = {"in_channels", "num_classes", "width", "height", "length", "vocab_size"}  # set from the data
    accepted = set(inspect.signature(NETWORKS[(modality, family)]).parameters) - data_keys
    for key in network:
        if key not in accepted:
            raise MlpipeError(
                f"params.yaml: key 'families.{modality}.{family}.{key}' is not a setting of the {modality} {family} "
                f"(it takes {', '.join(sorted(accepted))}, and {', '.join(OPTIMISER_KEYS + TRAINER_KEYS + TEXT_KEYS)})"
            )
