"""Where a candidate's weights start: from scratch, from a pretrained backbone (the pretrained
family), or from a registered version of another data set (`--init-from`, for cnn, rnn and
transformer). Each start gives the preprocessing, the network's keyword arguments and the initial
weights (a safetensors file in the candidate's folder; the head is always new)."""

from pathlib import Path

import numpy as np

from tasks.infra.errors import MlpipeError
from tasks.infra.settings import Settings
from tasks.infra.vocabulary import NETWORK_FAMILIES, PRETRAINED
from tasks.training.backbones import load_tokenizer, locate
from tasks.training.initial import Start, save_init
from tasks.types import Dataset, Split, TrainConfig

DEFAULT_MEAN, DEFAULT_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # ImageNet's, when a backbone says none


def start_of(
    family: str,
    modality: str,
    backbone: str | None,
    source: dict | None,
    settings: Settings,
    test_rows: tuple[str, str] | None = None,
) -> dict:
    """A candidate's TrainConfig.init, checked before anything trains: the pretrained family's
    backbone (the run's --backbone, else params.yaml's), or the version --init-from resolved to
    (tasks/training/transfer.py `resolve_source`) for the families trained from scratch.
    test_rows: the run's data set and test rows, which an encoder pretrained on it must share."""
    if family == PRETRAINED:
        if modality not in ("text", "image"):
            raise MlpipeError(f"the pretrained family fine-tunes text or image backbones; this data set is {modality}")
        if not backbone:
            raise MlpipeError(
                f"the pretrained family needs a backbone: --backbone NAME_OR_PATH_OR_URI, or "
                f"families.{modality}.pretrained.backbone in params.yaml"
            )
        return locate(backbone, modality, settings, test_rows).origin
    return dict(source) if source and family in NETWORK_FAMILIES else {}


def transfer_source(init_from: str | None, models: list[str], modality: str, settings: Settings) -> dict | None:
    """The version --init-from names, checked for every network family the run trains."""
    if not init_from:
        return None
    from tasks.training.transfer import resolve_source

    families = [f for f in models if f in NETWORK_FAMILIES]
    if not families:
        raise MlpipeError(f"--init-from starts {', '.join(NETWORK_FAMILIES)}: --models has none")
    return resolve_source(init_from, modality, families, settings)


def check_start(dataset: Dataset, config: TrainConfig, settings: Settings) -> None:
    """What can be refused about a network's start before any candidate trains: --init-from's
    architecture against this run's settings and data."""
    if "init_from" in config.init:
        from tasks.training.transfer import plan

        plan(dataset, config, settings)


def starting_point(dataset: Dataset, split: Split, config: TrainConfig, out_dir: Path, settings: Settings) -> Start:
    from models.networks import shape_kwargs
    from tasks.training.features import fit_preprocessing

    if config.family == PRETRAINED:
        return _from_backbone(dataset, split, config, out_dir, settings)
    if "init_from" in config.init:
        from tasks.training.transfer import from_version

        return from_version(dataset, config, out_dir, settings)
    info = fit_preprocessing(dataset, split, config.text)
    kwargs = shape_kwargs(info, config.family, len(dataset.classes)) | config.network
    return Start(info, kwargs)


def _from_backbone(dataset: Dataset, split: Split, config: TrainConfig, out_dir: Path, settings: Settings) -> Start:
    from models.networks import shape_kwargs

    backbone = locate(config.init["backbone"], dataset.modality, settings)
    info = dataset.preprocessing()
    if dataset.modality == "text":
        texts = dataset.frame[dataset.feature_columns[0]].iloc[split.train].tolist()
        info |= backbone_tokenizer(backbone.folder, texts, config.text.get("max_length"))
        extra = {}
    else:
        extra = image_settings(backbone.folder, backbone.config)
    kwargs = shape_kwargs(info, PRETRAINED, len(dataset.classes)) | {"backbone_config": backbone.config}
    kwargs |= extra | config.network
    lora = kwargs.pop("lora", None)
    return Start(info, kwargs, save_init(backbone.folder, out_dir), lora)


def backbone_tokenizer(folder: Path, texts: list[str], max_length: int | None) -> dict:
    """The backbone's own tokenizer as the served model reads it (tokenizers' JSON, with its
    special tokens), and a length: the 99th percentile of the training texts' token counts, within
    what the backbone's positions allow."""
    from transformers import AutoConfig

    tokenizer = load_tokenizer(folder, str(folder))
    positions = getattr(AutoConfig.from_pretrained(folder), "max_position_embeddings", 512)
    limit = min(positions - 2, 512, getattr(tokenizer, "model_max_length", 512) or 512)  # RoBERTa offsets by 2
    if not max_length:
        lengths = [len(ids) for ids in tokenizer(texts[:20_000])["input_ids"]]
        max_length = int(np.clip(np.percentile(lengths, 99), 8, limit))
    return {
        "tokenizer": tokenizer.backend_tokenizer.to_str(),
        "max_length": min(max_length, limit),
        "pad_id": tokenizer.pad_token_id,
        "pad_token": tokenizer.pad_token,
    }


def image_settings(folder: Path, config: dict) -> dict:
    """The input size and normalisation the backbone's image processor uses."""
    import json

    processor_file = folder / "preprocessor_config.json"
    processor = json.loads(processor_file.read_text()) if processor_file.exists() else {}
    size = processor.get("size") or config.get("image_size") or 224
    if isinstance(size, dict):
        size = size.get("shortest_edge") or size.get("height") or 224
    return {
        "image_size": int(size),
        "mean": list(processor.get("image_mean", DEFAULT_MEAN)),
        "std": list(processor.get("image_std", DEFAULT_STD)),
    }
