"""params.yaml as one typed model, validated once when read: a bad value, an unknown key or family
is refused naming the key, before anything runs. Each section's defaults are declared here, once;
a key left out (or set to null) takes its default."""

from contextlib import contextmanager
from pathlib import Path

import yaml
from pydantic import ConfigDict, Field, ValidationError, create_model, field_validator, model_validator

from tasks.infra.base_params import Section as _Section
from tasks.infra.compression_params import CompressionParams, StudentParams  # noqa: F401 - re-exported
from tasks.infra.errors import MlpipeError, one_line
from tasks.infra.monitoring_params import MonitoringParams, RetrainingParams
from tasks.infra.pretraining_params import PretrainingParams
from tasks.infra.settings import CODE_ROOT, Settings
from tasks.infra.tuning_params import TuningParams
from tasks.infra.validation_params import ChecksParams, DriftParams, ValidationParams  # noqa: F401 - re-exported
from tasks.infra.vocabulary import (
    FAMILIES,
    TRAINED_FAMILIES,
    BatchSize,
    ClassWeighting,
    Epochs,
    LearningRate,
    MinDelta,
    Modality,
    Monitor,
    Schedule,
    Seed,
)


class SplitParams(_Section):
    test_fraction: float = Field(gt=0, lt=1)
    val_fraction: float = Field(gt=0, lt=1)
    seed: Seed


class TrainerKeys(_Section):
    """What the `train` section sets and a family may override; unset: TrainConfig's default."""

    max_epochs: Epochs | None = None  # most epochs of this family's candidates
    batch_size: BatchSize | None = None  # samples per training batch
    patience: int | None = Field(None, ge=1)  # epochs without a better monitored value before stopping
    monitor: Monitor | None = None  # picks the checkpoint and stops early
    class_weighting: ClassWeighting | None = None  # sqrt: square-rooted inverse class frequency in the loss
    accumulate_grad_batches: int | None = Field(None, ge=1, le=1024)  # batches per optimiser step


class TrainParams(TrainerKeys):
    """The `train` section: every run needs the first three."""

    max_epochs: Epochs  # most epochs per candidate; early stopping may end sooner
    batch_size: BatchSize  # samples per training batch
    patience: int = Field(ge=1)
    min_steps: int = Field(0, ge=0, le=1_000_000)  # optimiser steps a network takes at least (config.py)
    timeout_minutes: float = Field(240, gt=0)  # for every candidate of a run


class OptimiserKeys(_Section):
    """Unset: the defaults of models.classifier.Classifier."""

    learning_rate: LearningRate | None = None  # the schedule's peak
    weight_decay: float | None = Field(None, ge=0)  # AdamW's
    schedule: Schedule | None = None  # one_cycle, or linear warm-up then linear decay
    warmup_fraction: float | None = Field(None, ge=0, lt=1)  # the linear schedule's warm-up, of all steps
    layer_decay: float | None = Field(None, gt=0, le=1)  # a pretrained backbone's: each block's rate below the next


class TokenizerKeys(_Section):
    """Text only; unset: the defaults of tasks.training.features.train_tokenizer."""

    vocab_size: int | None = Field(None, ge=10)  # WordPiece tokens learned from the training split
    max_length: int | None = Field(None, ge=1)  # tokens per text, longer cut; unset: 99th percentile of training texts
    lowercase: bool | None = None  # fold case before tokenizing


class NetworkParams(TrainerKeys, OptimiserKeys, TokenizerKeys):
    """A network family's section. Every other key goes to the network, whose constructor is
    checked when the family is trained (tasks/training/config.py `check_network_keys`)."""

    model_config = ConfigDict(extra="allow", strict=True)

    # The pretrained family's starting point: a Hugging Face hub id or folder, or models:/<name>-encoder/<v>.
    backbone: str | None = None

    def part(self, keys: type[_Section]) -> dict:
        """The keys of one part (TrainerKeys, OptimiserKeys, TokenizerKeys) that the section sets."""
        return self.model_dump(include=set(keys.model_fields), exclude_none=True)

    @property
    def network(self) -> dict:
        return dict(self.model_extra or {})


class BaselineParams(_Section):
    """Unset: the defaults of tasks.training.baseline.build_estimator."""

    C: int | float | None = Field(None, gt=0)  # an int stays one: logged and keyed as written
    max_kernel_rows: int | None = Field(None, ge=0)  # image: an RBF SVC up to this many rows
    neighbours: int | None = Field(None, ge=1)  # sequence: k of k-nearest-neighbour
    ngrams: list[int] | None = Field(None, min_length=2, max_length=2)  # text: TF-IDF word n-gram range


class RocketParams(_Section):
    kernels: int = Field(10_000, ge=84, le=100_000)  # MiniRocket's random convolutions (models/rocket.py)


class _Families(_Section):
    baseline: BaselineParams = Field(default_factory=BaselineParams)
    rocket: RocketParams = Field(default_factory=RocketParams)  # sequences only

    @model_validator(mode="before")
    @classmethod
    def _null_is_unset(cls, values):
        # `cnn:` with nothing under it is that family with the `train` section's settings.
        return {k: {} if v is None else v for k, v in values.items()} if isinstance(values, dict) else values


# One section per network family (None: not configured for this modality) and the baseline's.
FamilyParams = create_model(
    "FamilyParams", __base__=_Families, **{family: (NetworkParams | None, None) for family in TRAINED_FAMILIES}
)


class PromotionParams(_Section):
    """The champion/challenger gate (tasks/registry/promotion.py)."""

    min_delta: MinDelta = 0.0  # the gain's interval must clear this to promote
    bootstrap_samples: int = Field(1000, ge=100)
    confidence: float = Field(0.95, gt=0, lt=1)  # of the paired bootstrap interval of the gain
    seed: Seed = 0  # the bootstrap's draws


class ParallelParams(_Section):
    """Where a run's candidates train (`mlpipe run --parallel`, tasks/training/parallel.py)."""

    enabled: bool = False  # one after the other in the run's process; true: at once, on a Dask cluster
    # A running Dask scheduler (tcp://host:8786); unset: DASK_SCHEDULER_ADDRESS, else a local cluster.
    address: str | None = None
    workers: int = Field(2, ge=1, le=64)  # the local cluster's worker processes, a thread each


class ServerParams(_Section):
    """The project's Prefect server (tasks/infra/project_server.py)."""

    idle_minutes: float = Field(30, gt=0, le=7 * 24 * 60)  # it stops itself after this long without an API call


class SelectionParams(_Section):
    baseline: bool = True  # the classical baseline competes in every run
    ensemble: bool = True  # so does the mean of the candidates close to the best
    rocket: bool = True  # in a sequence run, so does MiniRocket (families.sequence.rocket)
    cv_below: int = Field(100, ge=0)  # fewer validation rows than this: choose by k-fold cross-validation
    folds: int = Field(5, ge=2, le=20)  # stratified folds of the training and validation rows


class DatasetEntry(_Section):
    """A data set `dvc repro` trains (dvc.yaml's foreach)."""

    modality: Modality  # image, sequence, text or audio
    models: str  # comma-separated families, as `mlpipe run --models` takes them
    backbone: str = ""  # the pretrained family's (--backbone); "": params.yaml's families.<modality>.pretrained
    init_from: str = ""  # --init-from: models:/<name>/<version> (an alias moves without rerunning the stage)

    @field_validator("models")
    @classmethod
    def _known_families(cls, models: str) -> str:
        unknown = [m for m in models.split(",") if m not in FAMILIES]
        if unknown:
            raise ValueError(f"unknown families {unknown}: use {', '.join(FAMILIES)}, comma-separated")
        return models


class ProjectParams(_Section):
    seed: Seed
    split: SplitParams
    train: TrainParams
    families: dict[Modality, FamilyParams]
    selection: SelectionParams = Field(default_factory=SelectionParams)
    validation: ValidationParams = Field(default_factory=ValidationParams)
    promotion: PromotionParams = Field(default_factory=PromotionParams)
    tuning: TuningParams = Field(default_factory=TuningParams)
    parallel: ParallelParams = Field(default_factory=ParallelParams)
    compression: CompressionParams = Field(default_factory=CompressionParams)
    pretraining: PretrainingParams = Field(default_factory=PretrainingParams)
    monitoring: MonitoringParams = Field(default_factory=MonitoringParams)
    retraining: RetrainingParams = Field(default_factory=RetrainingParams)
    server: ServerParams = Field(default_factory=ServerParams)
    schedules: dict[str, str] = Field(default_factory=dict)  # data set -> cron
    datasets: dict[str, DatasetEntry] = Field(default_factory=dict)

    def network(self, modality: str, family: str) -> NetworkParams:
        section = getattr(self.families.get(modality), family, None)
        if section is None:
            raise MlpipeError(f"params.yaml has no section families.{modality}.{family}")
        return section

    def families_backbone(self, modality: str) -> str | None:
        """families.<modality>.pretrained.backbone, where params.yaml sets one."""
        section = getattr(self.families.get(modality), "pretrained", None)
        return section.backbone if section is not None else None

    def baseline(self, modality: str) -> BaselineParams:
        return self.families[modality].baseline if modality in self.families else BaselineParams()


def load_params(settings: Settings) -> ProjectParams:
    """The project's params.yaml, else the one shipped with mlpipe."""
    for path in (settings.root / "params.yaml", CODE_ROOT / "params.yaml"):
        if path.exists():
            return _read(path)
    raise MlpipeError(f"no params.yaml in {settings.root} or {CODE_ROOT}")


def _read(path: Path) -> ProjectParams:
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise MlpipeError(f"{path} is not valid YAML: {error}".splitlines()[0]) from None
    if not isinstance(raw, dict):
        raise MlpipeError(f"{path} must hold a mapping of parameters")
    with raise_as_params_error(str(path)):
        return ProjectParams.model_validate(raw)


@contextmanager
def raise_as_params_error(where: str):
    """A pydantic error in a settings model as one line naming the key: `where: key 'k': ...`."""
    try:
        yield
    except ValidationError as error:
        raise one_line(error, where) from None
