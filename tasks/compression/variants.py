"""What `mlpipe compress` weighs against @champion: the champion itself (the teacher), read from its
registered files, and the variants built from a network: the distilled student as it is, with int8
weights (torch.ao), and in ONNX, fp32 and int8 (onnxruntime); the champion's own network quantized
and in ONNX when it is one network.

Each variant is a folder that a registered version is made from (spec.json and one member, as
tasks/registry/packaging.py writes them) and is loaded, for measuring, by the served code itself
(tasks/registry/pyfunc_model.py): what is measured is what serves.
"""

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from tasks.compression.measure import folder_size
from tasks.infra.errors import MlpipeError

logger = logging.getLogger("mlpipe.compression")

INT8 = "int8-dynamic"  # a member's `quantization` (models/quantized.py)


@dataclass
class Served:
    """A model as the served code loads it: the champion or a variant."""

    name: str  # champion, student, student-int8, student-onnx, student-onnx-int8, champion-int8, champion-onnx
    family: str  # the network family (the champion's: its own tag)
    folder: Path  # spec.json and the members' files
    parameters: int
    how: str  # what it is, for people
    model: object  # a loaded ClassifierModel

    def probabilities(self, frame: pd.DataFrame) -> np.ndarray:
        return self.model.probabilities(frame)

    def labels(self, frame: pd.DataFrame) -> np.ndarray:
        return self.model.predict(None, frame)["label"].to_numpy()

    def size_bytes(self) -> int:
        return folder_size(self.folder)

    def artifacts(self) -> dict[str, str]:
        """MLflow's artifacts mapping of its files, as packaging.log_model_files takes it."""
        return artifacts_in(self.folder)


def artifacts_in(folder: Path) -> dict[str, str]:
    """spec.json and each member's file (member_0.pt, member_1.skops, ...), by artifact name."""
    members = json.loads((folder / "spec.json").read_text())["members"]
    found = {m["artifact"]: next(folder.glob(f"{m['artifact']}.*"), None) for m in members}
    if missing := [name for name, path in found.items() if path is None]:
        raise MlpipeError(f"{folder} lacks the files of {', '.join(missing)}")
    return {"spec": str(folder / "spec.json")} | {name: str(path) for name, path in found.items()}


def load_served(name: str, family: str, folder: Path, parameters: int, how: str) -> Served:
    from tasks.registry.pyfunc_model import ClassifierModel

    model = ClassifierModel()
    model.load_context(SimpleNamespace(artifacts=artifacts_in(folder)))
    return Served(name, family, folder, parameters, how, model)


def champion(client, name: str, folder: Path) -> tuple[str, Served]:
    """(version, the champion as served), from the registered version's files: its artifacts, run by
    this checkout's serving code (the promotion gate re-scores it with its own code)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        version = client.get_model_version_by_alias(name, "champion")
    except MlflowException:
        raise MlpipeError(f"{name} has no @champion to compress: run `mlpipe run --dataset {name}` first") from None
    uri = client.get_model_version_download_uri(name, version.version)
    files = Path(mlflow.artifacts.download_artifacts(uri, dst_path=str(folder))) / "artifacts"
    if not (files / "spec.json").exists():
        raise MlpipeError(f"{name} v{version.version} is not a model mlpipe registered: it has no spec.json")
    try:  # a member file that would run code, or holds what mlpipe never writes, is refused there
        served = load_served("champion", version.tags.get("family", "?"), files, 0, f"@champion v{version.version}")
    except ValueError as error:
        raise MlpipeError(f"{name} v{version.version} cannot be loaded: {error}") from None
    served.parameters = _parameters(served.model)
    return str(version.version), served


def _parameters(model) -> int:
    """Weights of the loaded members: a network's tensors; a scikit-learn estimator's fitted arrays."""
    total = 0
    for member, loaded in model.members:
        if member["kind"] == "network":
            total += sum(p.numel() for p in loaded.parameters())
        elif member["kind"] == "sklearn":
            total += sum(np.asarray(v).size for k, v in vars(_final(loaded)).items() if k.endswith("_") and _array(v))
    return int(total)


def _final(estimator):
    return estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator


def _array(value) -> bool:
    return isinstance(value, np.ndarray) and value.dtype.kind in "fiu"


def single_network(served: Served):
    """(family, network, its kwargs, preprocessing) when the champion is one fp32 network, else None."""
    members = served.model.members
    if len(members) != 1 or members[0][0]["kind"] != "network" or members[0][0].get("quantization"):
        return None
    member, network = members[0]
    return member["family"], network, member["network_kwargs"], member["preprocessing"]


def network_variants(
    prefix: str,
    family: str,
    network,
    network_kwargs: dict,
    preprocessing: dict,
    root: Path,
    check_rows: pd.DataFrame,
    with_fp32: bool,
) -> tuple[list[Served], list[str]]:
    """The variants of one network (`prefix`: student or champion) and notes on any that could not
    be made. ONNX fp32 must give the PyTorch network's labels on `check_rows` (the test rows), and
    probabilities within onnx_export.TOLERANCE, or it is left out."""
    import torch

    from models.preprocessing import model_inputs
    from models.quantized import plain_state, quantized
    from tasks.compression.quantize import quantized_onnx

    parameters = int(sum(p.numel() for p in network.parameters()))
    folders = _VariantFolders(root, family, preprocessing["classes"], parameters)
    base = {"family": family, "network_kwargs": network_kwargs, "preprocessing": preprocessing}
    if with_fp32:
        fp32 = {"kind": "network", **base}
        folders.add(prefix, fp32, lambda p: torch.save(network.state_dict(), p), f"{family}, fp32")
    int8 = quantized(network)
    folders.add(
        f"{prefix}-int8",
        {"kind": "network", "quantization": INT8, **base},
        lambda p: torch.save(plain_state(int8), p),  # plain tensors: loaded with weights_only=True
        f"{family}, int8 dynamic quantization of Linear/LSTM/GRU (torch.ao)",
    )
    inputs = model_inputs(check_rows, preprocessing)
    try:
        exported = _checked_onnx(network, inputs, root / f"{prefix}-onnx" / "member_0.onnx", prefix)
    except Exception as error:  # noqa: BLE001 - an export that fails or differs leaves only that variant out
        note = f"{prefix}-onnx left out: {str(error).splitlines()[0][:300]}"
        logger.warning(note)
        return folders.made, [note]
    folders.add(f"{prefix}-onnx", {"kind": "onnx", **base}, lambda p: None, f"{family} in ONNX, fp32 (onnxruntime)")
    folders.add(
        f"{prefix}-onnx-int8",
        {"kind": "onnx", **base},
        lambda p: quantized_onnx(exported, p),
        f"{family} in ONNX, int8 dynamic quantization (onnxruntime)",
    )
    return folders.made, []


@dataclass
class _VariantFolders:
    """The variants of one network, each written as a folder a version is made from and loaded as it serves."""

    root: Path
    family: str
    classes: list
    parameters: int  # the network's, for each of its variants
    made: list[Served] = field(default_factory=list)

    def add(self, name: str, member: dict, write, how: str) -> None:
        """`write(path)` writes the member's file (ONNX fp32's is the export's, there already)."""
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        write(folder / f"member_0.{'onnx' if member['kind'] == 'onnx' else 'pt'}")
        spec = {"family": self.family, "classes": self.classes, "members": [member | {"artifact": "member_0"}]}
        (folder / "spec.json").write_text(json.dumps(spec))
        self.made.append(load_served(name, self.family, folder, self.parameters, how))


def _checked_onnx(network, inputs: np.ndarray, path: Path, prefix: str) -> Path:
    """The network exported to ONNX at `path`, checked against its PyTorch logits on `inputs` (raises when not)."""
    import torch

    from models.quantized import without_transformer_fast_path
    from tasks.compression import onnx_export

    exported = onnx_export.export(network, inputs[:1], path)
    with torch.no_grad(), without_transformer_fast_path():
        reference = network(torch.as_tensor(inputs)).numpy()
    onnx_export.check_against(reference, onnx_export.session(exported).logits(inputs), f"{prefix} in ONNX")
    return exported
