"""Where a candidate's weights start: from scratch, from a pretrained backbone (the pretrained
family), or from a registered version of another data set (`--init-from`, for cnn, rnn and
transformer). Each start gives the preprocessing, the network's keyword arguments and the initial
weights (a safetensors file in the candidate's folder; the head is always new)."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tasks.infra.errors import MlpipeError
from tasks.infra.settings import Settings
from tasks.infra.vocabulary import NETWORK_FAMILIES, PRETRAINED
from tasks.training.backbones import locate
from tasks.types import Dataset, Split, TrainConfig

INIT_FILE = "init.safetensors"
DEFAULT_MEAN, DEFAULT_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # ImageNet's, when a backbone says none


@dataclass
class Start:
    preprocessing: dict  # raw rows -> inputs, as the served model will do it
    network_kwargs: dict
    init_weights: Path | None = None  # the network's starting state; None: random
    lora: dict | None = None  # LoRA adapters the trainer adds to a pretrained encoder (`lora:` of its section)


def start_of(family: str, modality: str, backbone: str | None, source: dict | None, settings: Settings) -> dict:
    """A candidate's TrainConfig.init, checked before anything trains: the pretrained family's
    backbone (the run's --backbone, else params.yaml's), or the version --init-from resolved to
    (tasks/training/transfer.py `resolve_source`) for the families trained from scratch."""
    if family == PRETRAINED:
        if modality not in ("text", "image"):
            raise MlpipeError(f"the pretrained family fine-tunes text or image backbones; this data set is {modality}")
        if not backbone:
            raise MlpipeError(
                f"the pretrained family needs a backbone: --backbone NAME_OR_PATH_OR_URI, or "
                f"families.{modality}.pretrained.backbone in params.yaml"
            )
        return locate(backbone, modality, settings).origin
    return dict(source) if source and family in NETWORK_FAMILIES else {}


def transfer_source(params, modality: str, settings: Settings) -> dict | None:
    """The version the run's --init-from names, checked for every network family the run trains."""
    if not params.init_from:
        return None
    from tasks.training.transfer import resolve_source

    families = [f for f in params.models if f in NETWORK_FAMILIES]
    if not families:
        raise MlpipeError(f"--init-from starts {', '.join(NETWORK_FAMILIES)}: --models has none")
    return resolve_source(params.init_from, modality, families, settings)


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


def with_lora(encoder, lora: dict):
    """The encoder with LoRA adapters (Hu et al., 2021) where peft puts them for its architecture
    (BERT's query and value projections, ...): only they, and the head, train."""
    from peft import LoraConfig, get_peft_model

    settings = {"r": 8, "lora_alpha": 2 * lora.get("r", 8), "lora_dropout": 0.1} | lora
    try:
        return get_peft_model(encoder, LoraConfig(**settings))
    except (TypeError, ValueError) as error:
        raise MlpipeError(f"lora: {settings}: {str(error).splitlines()[0]}") from None


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
    from transformers import AutoConfig, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError) as error:
        raise MlpipeError(f"backbone {folder}: its tokenizer does not load: {str(error).splitlines()[0]}") from None
    if not getattr(tokenizer, "is_fast", False) or tokenizer.pad_token_id is None:
        raise MlpipeError(f"backbone {folder}: its tokenizer needs a tokenizer.json and a padding token")
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


def save_init(folder: Path, out_dir: Path) -> Path:
    """The backbone's weights under the network's names (`encoder.`), for the trainer to start from."""
    from safetensors.torch import save_file
    from transformers import AutoModel
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()  # a pooler the checkpoint lacks is new, as the head is: no warning
    state = AutoModel.from_pretrained(folder).state_dict()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / INIT_FILE
    save_file({f"encoder.{k}": v.contiguous() for k, v in state.items()}, str(path))
    return path


def initial_network(modality: str, family: str, network_kwargs: dict, init_weights: Path | None, lora: dict | None):
    """The network a fit starts from: built, given its starting weights, then its LoRA adapters
    (after the weights, whose names the adapters change)."""
    from models.networks import build_network

    network = build_network(modality, family, **network_kwargs)
    load_init(network, init_weights)
    if lora:
        network.encoder = with_lora(network.encoder, lora)
    return network


def load_init(network, path: Path | None) -> None:
    """Start the network from `path`: every weight but the head's must be there and fit."""
    if path is None:
        return
    from safetensors.torch import load_file

    if not path.exists():  # a node of a multi-node fit: DDP gives it node 0's weights when it starts
        return
    state = {k: v for k, v in load_file(str(path)).items() if not k.startswith("head.")}
    own = network.state_dict()
    for key, value in state.items():
        if key in own and own[key].shape != value.shape:
            shapes = f"{tuple(value.shape)} there, {tuple(own[key].shape)} here"
            raise MlpipeError(f"the starting weights do not fit the network: {key} is {shapes}")
    network.load_state_dict(state, strict=False)
