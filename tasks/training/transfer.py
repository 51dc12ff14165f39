"""`--init-from models:/<name>@<alias>` (or /<version>): a cnn, rnn or transformer starts from the
body of another data set's registered network of the same modality and family. The head is new,
for this data set's classes, and a text network keeps the source's tokenizer (its embeddings are
rows of that vocabulary)."""

import json
from pathlib import Path

from tasks.infra.errors import MlpipeError
from tasks.infra.settings import Settings
from tasks.training.registered import download_version, version_of
from tasks.types import Dataset, TrainConfig

DATA_KEYS = ("num_classes",)  # what the new data set decides; every other keyword is the architecture


def resolve_source(uri: str, modality: str, families: list[str], settings: Settings) -> dict:
    """The version a models:/ URI names now (an alias moves on; the cache key and the lineage keep
    the version), checked against the run's modality and families before anything trains."""
    name, version, alias = _parse(uri)
    found = version_of(settings, name, version, alias)
    if found is None:
        raise MlpipeError(f"--init-from {uri}: no such registered version")
    spec = _spec(name, found.version, settings)
    source_modality = spec["members"][0]["preprocessing"]["modality"]
    if source_modality != modality:
        raise MlpipeError(f"--init-from {uri}: a model of {source_modality} data; this data set is {modality}")
    offered = {m["family"] for m in spec["members"] if m["kind"] == "network"}
    missing = [f for f in families if f not in offered]
    if missing:
        raise MlpipeError(
            f"--init-from {uri} (v{found.version}) has no {', '.join(missing)} network to start from "
            f"(it has {', '.join(sorted(offered)) or 'none'}): train those families from scratch in another run"
        )
    return {"init_from": uri, "name": name, "version": str(found.version), "run_id": found.run_id}


def from_version(dataset: Dataset, config: TrainConfig, out_dir: Path, settings: Settings):
    """The Start of a network from the source version's member of its family."""
    from tasks.training.initial import INIT_FILE, Start

    member, info, kwargs = plan(dataset, config, settings)
    _save_weights(config.init, member, out_dir / INIT_FILE, settings)
    return Start(info, kwargs, out_dir / INIT_FILE)


def plan(dataset: Dataset, config: TrainConfig, settings: Settings) -> tuple[dict, dict, dict]:
    """(the source's member, the preprocessing, the network's keyword arguments), checked: the
    architecture this run's settings and data give must be the source's. The flow calls it before
    anything trains."""
    from models.networks import shape_kwargs

    source = config.init
    spec = _spec(source["name"], source["version"], settings)
    member = next(m for m in spec["members"] if m["kind"] == "network" and m["family"] == config.family)
    if member.get("quantization"):
        raise MlpipeError(f"--init-from {source['init_from']}: its {config.family} has int8 weights; give a float one")
    info = dataset.preprocessing()
    if dataset.modality == "text":  # the source's vocabulary, which its embeddings index
        keep = ("tokenizer", "max_length", "vocab_size")
        info |= {k: member["preprocessing"][k] for k in keep if k in member["preprocessing"]}
    data = shape_kwargs(info, config.family, len(dataset.classes))
    kwargs = data | config.network
    architecture = {k: v for k, v in member["network_kwargs"].items() if k not in DATA_KEYS}
    for key, value in architecture.items():
        if kwargs.get(key, value) != value:
            fix = (
                "the data's shape differs"
                if key in data
                else f"set families.{dataset.modality}.{config.family}.{key} to {value!r} (or its tuned setting)"
            )
            raise MlpipeError(
                f"--init-from {source['init_from']}: the {config.family}'s {key} is {value!r} there and "
                f"{kwargs[key]!r} here: {fix}"
            )
    return member, info, architecture | kwargs


def _parse(uri: str) -> tuple[str, str | None, str | None]:
    body = uri.removeprefix("models:/")
    if body == uri:
        raise MlpipeError(f"--init-from {uri!r}: expected models:/<name>@<alias> or models:/<name>/<version>")
    if "@" in body:
        name, alias = body.split("@", 1)
        return name, None, alias
    name, _, version = body.partition("/")
    if not version.isdigit():
        raise MlpipeError(f"--init-from {uri!r}: expected models:/<name>@<alias> or models:/<name>/<version>")
    return name, version, None


def _download(name: str, version: str, settings: Settings) -> Path:
    """The version's spec.json and members (the pyfunc's artifacts folder)."""
    spec = next(download_version(settings, name, version, "sources").rglob("spec.json"), None)
    if spec is None:
        raise MlpipeError(
            f"--init-from models:/{name}/{version} is no classifier mlpipe registered (an encoder? use --backbone)"
        )
    return spec.parent


def _spec(name: str, version: str, settings: Settings) -> dict:
    return json.loads((_download(name, version, settings) / "spec.json").read_text())


def _save_weights(source: dict, member: dict, path: Path, settings: Settings) -> None:
    """The member's weights, as the network names them, for the trainer to start from."""
    import torch

    from tasks.training.initial import write_weights

    folder = _download(source["name"], source["version"], settings)
    weights_file = next(folder.glob(f"{member['artifact']}.*"))
    if weights_file.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(weights_file))
    else:
        state = torch.load(weights_file, map_location="cpu", weights_only=True)
    write_weights({k: v.contiguous() for k, v in state.items()}, path)
