"""A candidate as a registered model: spec.json and one artifact per member, logged as an MLflow
pyfunc with the `models` package as its code and registered as a new version.

tasks/registry/pyfunc_model.py reads the files back in the serving process: a network's weights, or the
classical baseline's fitted scikit-learn estimator (skops, not pickle: a file in shared storage is
data, never code to run); an ensemble has one member per candidate it averages.
"""

import json
from pathlib import Path
from tempfile import TemporaryDirectory

from tasks.evaluation.selection import Ensemble
from tasks.infra.settings import CODE_ROOT
from tasks.infra.vocabulary import PRETRAINED, ROCKET
from tasks.training.baseline import TrainedBaseline
from tasks.types import Dataset, Split

PYFUNC_FILE = Path(__file__).with_name("pyfunc_model.py")
AUDIO_PATH_COLUMN = "audio_path_column"  # the model's metadata key: which input column names sound files


def write_model_files(model, folder: Path) -> dict[str, str]:
    """Write spec.json and the members' artifacts into `folder`; return MLflow's artifacts mapping."""
    members = model.members if isinstance(model, Ensemble) else [model]
    artifacts, described = {}, []
    for index, member in enumerate(members):
        name = f"member_{index}"
        if isinstance(member, TrainedBaseline):
            import skops.io

            path = folder / f"{name}.skops"
            skops.io.dump(member.estimator, path)
            described.append({"kind": "sklearn", "family": member.family, "preprocessing": member.preprocessing})
        else:
            path = _save_network(member, folder / name)
            described.append(
                {
                    "kind": "network",
                    "family": member.family,
                    "network_kwargs": member.network_kwargs,
                    "preprocessing": member.preprocessing,
                }
            )
        described[-1]["artifact"] = name
        artifacts[name] = str(path)
    spec = folder / "spec.json"
    spec.write_text(
        json.dumps({"family": model.family, "classes": model.preprocessing["classes"], "members": described})
    )
    return {"spec": str(spec), **artifacts}


def _save_network(member, stem: Path) -> Path:
    """A network's weights: safetensors for a pretrained backbone (its config is in spec.json, its
    tokenizer in the preprocessing), torch's format for the rest, as versions always had."""
    if member.family == PRETRAINED:
        from safetensors.torch import save_model

        save_model(member.network, str(stem.with_suffix(".safetensors")))
        return stem.with_suffix(".safetensors")
    import torch

    torch.save(member.network.state_dict(), stem.with_suffix(".pt"))
    return stem.with_suffix(".pt")


def requirements(onnx: bool = False, pretrained: bool = False, rocket: bool = False, audio: bool = False) -> list[str]:
    """The serving process's packages, pinned to this one's (MLflow would spend seconds inferring
    them); onnxruntime too for a version with an ONNX member, transformers for a pretrained one,
    aeon for MiniRocket, soundfile and scipy for sound files. (safetensors and skops always: the
    served code reads a pretrained member and a classical one with them, and they are small.)"""
    import mlflow
    import numpy as np
    import pandas as pd
    import safetensors
    import sklearn
    import tokenizers
    import torch

    return (
        [
            f"mlflow=={mlflow.__version__}",
            f"torch=={torch.__version__.split('+')[0]}",
            f"numpy=={np.__version__}",
            f"pandas=={pd.__version__}",
            f"scikit-learn=={sklearn.__version__}",
            f"tokenizers=={tokenizers.__version__}",
            f"safetensors=={safetensors.__version__}",
            *_pinned("skops"),
        ]
        + ([_onnxruntime()] if onnx else [])
        + (_pretrained() if pretrained else [])
        + (_aeon() if rocket else [])
        + (_pinned("soundfile", "scipy") if audio else [])
    )


def _pinned(*names: str) -> list[str]:
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in names]


def _aeon() -> list[str]:
    return _pinned("aeon", "numba", "scipy")


def _pretrained() -> list[str]:
    import transformers

    return [f"transformers=={transformers.__version__}"]


def _onnxruntime() -> str:
    import onnxruntime

    return f"onnxruntime=={onnxruntime.__version__}"


def log_and_register(dataset: Dataset, split: Split, model, run_id: str, tags: dict) -> str:
    """Log the chosen candidate as a pyfunc model in its candidate run and register it: the version."""
    with TemporaryDirectory() as tmp:
        return log_model_files(dataset, split, write_model_files(model, Path(tmp)), model.predict_proba, run_id, tags)


def log_model_files(
    dataset: Dataset, split: Split, artifacts: dict[str, str], predict_proba, run_id: str, tags: dict
) -> str:
    """Log spec.json and its members' files (`artifacts`) as a pyfunc model in run `run_id` and
    register it: the version. `predict_proba` (raw rows -> probabilities) makes the signature."""
    import mlflow
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature

    from tasks.validation.drift import profile

    test_rows = dataset.frame.iloc[split.test][dataset.feature_columns]  # raw rows, their own dtypes
    probabilities = predict_proba(test_rows)
    classes = np.asarray(dataset.classes)
    predicted = pd.Series(classes[probabilities.argmax(axis=1)])  # monitoring's reference class mix
    example = test_rows.head(5)
    output = pd.DataFrame({"label": predicted.head(5), "probability": probabilities[:5].max(axis=1)})
    members = json.loads(Path(artifacts["spec"]).read_text())["members"]
    onnx = any(m["kind"] == "onnx" for m in members)
    pretrained = any(m["family"] == PRETRAINED for m in members)
    rocket = any(m["family"] == ROCKET for m in members)
    audio = dataset.modality == "audio"
    # Integers declared 64-bit: a CSV of pixel values reads as int64, which MLflow refuses for the
    # int32 schema an image folder's uint8 pixels would give.
    wide = {c: "int64" for c in example.columns if pd.api.types.is_integer_dtype(example[c])}
    signature = infer_signature(example.astype(wide), output)
    if audio:
        # Sound is served as files (the path column) or arrays of samples (an `audio` column), not as
        # the sample columns it was trained on: no input schema, and two clips as arrays for an example.
        from mlflow.models import ModelSignature

        from models.preprocessing import AUDIO_COLUMN

        clips = test_rows.head(2).to_numpy(dtype=np.float32).round(5)
        example = pd.DataFrame({AUDIO_COLUMN: [clip.tolist() for clip in clips]})
        signature = ModelSignature(inputs=None, outputs=signature.outputs)
    with mlflow.start_run(run_id=run_id):
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(PYFUNC_FILE),
            artifacts=artifacts,
            code_paths=[str(CODE_ROOT / "models")],
            signature=signature,
            input_example=example,
            pip_requirements=requirements(onnx, pretrained, rocket, audio),
            # batch inference resolves a manifest's sound files against the manifest's folder
            metadata={AUDIO_PATH_COLUMN: dataset.audio["path_column"]} if audio else None,
        )
        # The champion's data and its predictions of the test rows, summarised: the next run's
        # drift check and batch inference's monitoring compare against them.
        mlflow.log_dict(profile(dataset, predicted), "data/profile.json")
        version = mlflow.register_model(info.model_uri, dataset.name, tags=tags)
    return str(version.version)
