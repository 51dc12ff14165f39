"""`mlpipe data add`: a user's files become a DVC-versioned data set of the project.

PATH is read and checked first (a data set that cannot be loaded is refused before anything is
copied), then copied to data/<name>/, described by data/<name>.yaml, tracked by DVC
(data/<name>.dvc) and pushed to the default remote. Adding changed files again makes a new
version; the caller prints the git commit that records it.
"""

import shutil
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory

import yaml

from tasks.infra.errors import MlpipeError
from tasks.infra.files import write_atomic
from tasks.infra.settings import Settings
from tasks.infra.tuned import ensure_tuned_file
from tasks.infra.vocabulary import NETWORK_FAMILIES

SUFFIX_FORMATS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".npz": "npz", ".txt": "ucr"}


@dataclass
class Added:
    name: str
    spec_path: Path
    dvc_file: Path
    data_hash: str
    previous_hash: str | None  # the version it replaced; None for a new data set
    rows: int
    remote: str

    def files_to_commit(self, root: Path) -> list[Path]:
        """What git records of this version: the .dvc file, the spec, DVC's .gitignore, params.yaml
        and the data set's tuned settings."""
        files = [self.dvc_file, self.spec_path, self.dvc_file.parent / ".gitignore", root / "params.yaml"]
        files.append(root / "params" / f"{self.name}.yaml")
        return [f for f in files if f.exists()]


def infer_format(path: Path, modality: str = "image") -> str:
    if path.is_dir():
        return "audio-folder" if modality == "audio" else "image-folder"
    try:
        return SUFFIX_FORMATS[path.suffix.lower()]
    except KeyError:
        raise MlpipeError(
            f"cannot tell the format of {path}: pass --format ({', '.join(SUFFIX_FORMATS.values())})"
        ) from None


def add_dataset(
    source: Path,
    name: str,
    modality: str,
    settings: Settings,
    data_format: str | None = None,
    test: Path | None = None,
    **spec_keys,
) -> Added:
    """spec_keys: label_column, text_column and the other keys of a data set spec."""
    from tasks.data.loading import load_spec
    from tasks.data.spec import check_name
    from tasks.data.versioning import ensure_remote, push, recorded_hash, version_data

    check_name(name)  # before anything is written: the name makes file names
    for part in (source, test):
        if part is not None and not part.exists():
            raise MlpipeError(f"{part} does not exist")
    parts = {"train": source.resolve(), **({"test": test.resolve()} if test else {})}
    spec = {"name": name, "modality": modality, "format": data_format or infer_format(source, modality)}
    spec |= {k: v for k, v in spec_keys.items() if v is not None}
    with TemporaryDirectory() as tmp:  # refuse data that does not load, before anything is copied
        check = Path(tmp, f"{name}.yaml")
        check.write_text(yaml.safe_dump(spec | {k: str(v) for k, v in parts.items()}, sort_keys=False))
        loaded = load_spec(check)
        rows = len(loaded.frame)

    folder, spec_path, dvc_file = (settings.data_dir / f"{name}{suffix}" for suffix in ("", ".yaml", ".dvc"))
    previous = recorded_hash(dvc_file) if dvc_file.exists() else None
    staged = settings.data_dir / f".{name}.incoming"
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir(parents=True)
    for key, path in parts.items():
        # Train and test each in a folder of their own: they may share a file name.
        (staged / key).mkdir()
        if path.is_dir():
            shutil.copytree(path, staged / key / path.name)
        else:
            shutil.copy2(path, staged / key / path.name)
            for relative in (
                _listed(loaded, key, path.parent) if loaded.audio and spec["format"] != "audio-folder" else []
            ):
                (staged / key / relative).parent.mkdir(parents=True, exist_ok=True)  # where the table says
                shutil.copy2(path.parent / relative, staged / key / relative)
        spec[key] = f"{name}/{key}/{path.name}"
    shutil.rmtree(folder, ignore_errors=True)  # the old version stays in DVC's cache and remote
    staged.rename(folder)
    write_atomic(spec_path, yaml.safe_dump(spec, sort_keys=False))
    data_hash = version_data(settings.root, folder)
    _list_in_params(settings.root / "params.yaml", name, modality)
    ensure_tuned_file(settings, name)  # dvc.yaml's stage reads it: it must exist before any tuning
    remote = ensure_remote(settings.root)
    push(settings.root, [dvc_file])
    return Added(name, spec_path, dvc_file, data_hash, previous, rows, remote)


def _listed(dataset, key: str, folder: Path) -> list[Path]:
    """The sound files the `key` part's table lists, relative to its `folder` (reading checked
    that each lies under it)."""
    import numpy as np

    files = dataset.frame[dataset.audio["path_column"]]
    test = np.zeros(len(files), dtype=bool)
    if dataset.test_positions is not None:
        test[dataset.test_positions] = True
    return [Path(f).relative_to(folder.resolve()) for f in files[test if key == "test" else ~test]]


def _list_in_params(params_path: Path, name: str, modality: str) -> None:
    """Add the data set to params.yaml's `datasets` (the stages `dvc repro` runs); ruamel.yaml's
    round trip keeps the file's comments, quotes and layout."""
    import io

    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

    if not params_path.exists():
        return
    round_trip = YAML()
    round_trip.preserve_quotes, round_trip.width = True, 4096  # long lines stay one line
    round_trip.representer.add_representer(
        type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    params = round_trip.load(params_path.read_text()) or CommentedMap()
    if params.get("datasets") is None:
        params["datasets"] = CommentedMap()
    if name in params["datasets"]:
        return
    entry = CommentedMap(modality=modality, models=",".join(NETWORK_FAMILIES), backbone="", init_from="")
    entry.fa.set_flow_style()  # one line, as the file lists them
    _append_keeping_comments(params["datasets"], name, entry)
    text = io.StringIO()
    round_trip.dump(params, text)
    write_atomic(params_path, text.getvalue())


def _append_keeping_comments(mapping, key: str, value) -> None:
    """mapping[key] = value, at the end. ruamel.yaml keeps the comment lines that follow a block
    (say, the next section's heading) on its last entry's comment: they stay after the new entry."""
    import copy

    last = _trailing_comment(mapping)
    mapping[key] = value
    if last is not None and "\n" in last.value.rstrip("\n"):
        own, following = last.value.split("\n", 1)
        last.value = own + "\n"  # the old last entry keeps its own end-of-line comment
        moved = copy.copy(last)
        moved.value = "\n" + following
        mapping.ca.items[key] = [None, None, moved, None]


def _trailing_comment(node):
    """The comment token after a mapping's last entry (that entry's own, deepest first), or None."""
    if not isinstance(node, dict) or not node:
        return None
    last = list(node)[-1]
    if (inner := _trailing_comment(node[last])) is not None:
        return inner
    item = node.ca.items.get(last) if hasattr(node, "ca") else None
    return item[2] if item and len(item) > 2 else None
