"""A pretrained backbone, found without reaching a hub unless the environment allows it, and
checked before any training: its files, its modality and whether fine-tuning it fits the memory.

A backbone is named by a Hugging Face hub id (read from the local Hugging Face cache; downloaded
only where HF_HUB_OFFLINE is unset and a hub is reachable), a local folder in Hugging Face layout,
or the models:/<name>-encoder/<version> that `mlpipe pretrain` registered.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path

from tasks.infra.errors import MlpipeError
from tasks.infra.settings import Settings

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
SMALL_FILES = (".json", ".txt", ".model")  # config, tokenizer and image processor files
# AdamW fine-tuning in fp32 holds weights, gradients and two moments: 16 bytes a parameter, and
# activations on top; a backbone whose estimate passes the free memory is refused before loading.
BYTES_PER_PARAMETER = 16
ACTIVATION_MARGIN = 1.5


@dataclass
class Backbone:
    source: str  # as the user named it
    folder: Path  # its files on this machine, in Hugging Face layout
    origin: dict  # what the cache key and the runs record: source, weights digest, a version's run id

    @property
    def config(self) -> dict:
        return json.loads((self.folder / "config.json").read_text())


def locate(source: str, modality: str, settings: Settings, test_rows: tuple[str, str] | None = None) -> Backbone:
    """The backbone's folder, its files and modality checked, its size weighed against the memory.
    test_rows: (data set, test_rows_digest) of the run, which an encoder `mlpipe pretrain` made on
    that data set must share (else its texts may hold the run's test rows)."""
    if source.startswith("models:/"):
        backbone = _registered(source, settings, test_rows)  # its origin names the version's run
    elif Path(source).expanduser().is_dir():
        backbone = Backbone(source, Path(source).expanduser().resolve(), {"backbone": source})
    elif source.startswith((".", "/", "~")):  # a path, not a hub id: no hub to point at
        raise MlpipeError(
            f"backbone {source!r}: no such folder (a Hugging Face layout: config.json, weights, tokenizer)"
        )
    else:
        folder = _from_hub_cache(source)  # a snapshot's folder is named by its commit
        backbone = Backbone(source, folder, {"backbone": source, "revision": folder.name})
    _check_files(backbone, modality)
    check_architecture(backbone, modality)
    if set(backbone.origin) == {"backbone"}:  # a local folder: named by its weights
        backbone.origin["digest"] = _weights_digest(backbone.folder)
    return backbone


def _from_hub_cache(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download

    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    how = f"give a local folder in Hugging Face layout, or `huggingface-cli download {repo_id}` where a hub answers"
    try:
        return Path(snapshot_download(repo_id, local_files_only=offline))
    except Exception as error:  # noqa: BLE001 - not found, not cached, offline, a bad id: all say the same
        where = "in the Hugging Face cache (HF_HUB_OFFLINE=1)" if offline else "on disk or on a reachable hub"
        cause = type(error).__name__
        raise MlpipeError(f"backbone {repo_id!r} is not a folder and not {where} ({cause}): {how}") from None


def _registered(uri: str, settings: Settings, test_rows: tuple[str, str] | None) -> Backbone:
    """A version `mlpipe pretrain` registered, downloaded once to the outputs folder."""
    from tasks.training.registered import download_version, version_of

    body = uri.removeprefix("models:/")
    name, alias = body.split("@", 1) if "@" in body else (body.partition("/")[0], None)
    registered = version_of(settings, name, body.partition("/")[2], alias)
    if registered is None:
        raise MlpipeError(f"backbone {uri}: no such registered version (`mlpipe pretrain` registers them)")
    version = str(registered.version)
    tags = registered.tags
    if test_rows and tags.get("dataset") == test_rows[0] and tags.get("test_rows") != test_rows[1]:
        raise MlpipeError(
            f"backbone {uri} was pretrained on {test_rows[0]} with other test rows (another data version or split): "
            f"its texts may include this run's test rows; pretrain again: mlpipe pretrain --dataset {test_rows[0]}"
        )
    target = download_version(settings, name, version, "backbones")
    folders = sorted(path.parent for path in target.rglob("config.json"))
    if not folders:
        raise MlpipeError(f"backbone {uri} holds no Hugging Face model (no config.json): it is not an encoder")
    return Backbone(uri, folders[0], {"backbone": uri, "version": version, "run_id": registered.run_id})


def _check_files(backbone: Backbone, modality: str) -> None:
    folder, name = backbone.folder, backbone.source
    if not (folder / "config.json").exists():
        raise MlpipeError(f"backbone {name}: no config.json in {folder}: not a Hugging Face model folder")
    try:
        config = backbone.config
    except (OSError, ValueError) as error:
        raise MlpipeError(f"backbone {name}: {folder / 'config.json'} is not readable JSON: {error}") from None
    if config.get("is_encoder_decoder"):
        raise MlpipeError(f"backbone {name} is an encoder-decoder ({config.get('model_type')}): give an encoder")
    kind = "text" if "vocab_size" in config else "image" if "num_channels" in config else None
    if kind != modality:
        what = f"{kind} model" if kind else f"{config.get('model_type', 'model')} that is neither text nor image"
        article = "an" if what[0] in "aeiou" else "a"
        raise MlpipeError(f"backbone {name} is {article} {what}; {modality} data needs a {modality} backbone")
    if modality == "text" and not any((folder / f).exists() for f in ("tokenizer.json", "vocab.txt", "vocab.json")):
        raise MlpipeError(f"backbone {name}: no tokenizer in {folder} (tokenizer.json or its vocabulary file)")
    if modality == "text":
        load_tokenizer(folder, name)


def load_tokenizer(folder: Path, name: str):
    """The backbone's own tokenizer: a fast one (tokenizers' JSON is what the served model reads)
    with a padding token."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
    except Exception as error:  # noqa: BLE001 - transformers raises many kinds for a broken tokenizer
        raise MlpipeError(f"backbone {name}: its tokenizer does not load: {str(error).splitlines()[0]}") from None
    if not getattr(tokenizer, "is_fast", False) or tokenizer.pad_token_id is None:
        raise MlpipeError(f"backbone {name}: its tokenizer needs a tokenizer.json and a padding token")
    return tokenizer


def check_architecture(backbone: Backbone, modality: str) -> None:
    """Build the backbone without memory (torch's meta device): it must be an encoder of the data's
    inputs, and small enough to fine-tune here, judged from its parameter count before any weight loads."""
    import inspect

    import torch

    from models.backbone import encoder_from_config

    name, config = backbone.source, backbone.config
    try:
        with torch.device("meta"):
            encoder = encoder_from_config(config)
    except Exception as error:  # noqa: BLE001 - an unknown model_type, a config transformers cannot build
        raise MlpipeError(f"backbone {name}: its config.json builds no model: {str(error).splitlines()[0]}") from None
    wanted = "input_ids" if modality == "text" else "pixel_values"
    if wanted not in inspect.signature(encoder.forward).parameters:
        raise MlpipeError(f"backbone {name} ({config.get('model_type')}) takes no {wanted}: not a {modality} encoder")
    parameters = sum(p.numel() for p in encoder.parameters())
    needed = parameters * BYTES_PER_PARAMETER * ACTIVATION_MARGIN
    free, where = _free_memory()
    if needed > free:
        raise MlpipeError(
            f"backbone {name} has {parameters / 1e6:,.0f} M parameters: fine-tuning needs about "
            f"{needed / 2**30:,.1f} GiB and {where} has {free / 2**30:,.1f} GiB free: use a smaller backbone"
        )


def _free_memory() -> tuple[float, str]:
    import torch

    if torch.cuda.is_available():
        free, _ = torch.cuda.mem_get_info()
        return float(free), "the GPU"
    import psutil

    return float(psutil.virtual_memory().available), "this machine"


def _weights_digest(folder: Path) -> str:
    """Names a folder for the training cache: its weights by size and modification time (reading a
    gigabyte to hash it would cost more than the run's fixed cost), its small files (config,
    tokenizer, image processor) by their contents."""
    from tasks.infra.fingerprints import digest

    files = [folder / f for f in WEIGHT_FILES if (folder / f).exists()] or sorted(folder.glob("*.safetensors"))
    if not files:
        raise MlpipeError(f"backbone folder {folder} has no weights ({' or '.join(WEIGHT_FILES)})")
    weights = [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    small = [(f.name, f.read_text(errors="replace")) for f in sorted(folder.iterdir()) if f.suffix in SMALL_FILES]
    return digest(weights, small)[:16]
