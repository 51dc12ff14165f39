"""The registered model, as an MLflow "model from code".

MLflow stores this file with every registered version and runs it when the version loads, so a
serving process needs torch, pandas, scikit-learn and the `models` package (shipped in the
version's code_paths), not mlpipe, Prefect or Lightning.

spec.json lists the model's members: one for a network or the classical baseline, several for an
ensemble, whose probabilities are averaged. Each member names its artifact and its preprocessing.
A compact variant (`mlpipe compress`) is one member: a network with int8 weights, or an ONNX file
that onnxruntime runs (models/quantized.py, models/onnx_network.py).
"""

import json
import pickle
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd


class ClassifierModel(mlflow.pyfunc.PythonModel):
    """Raw rows in (pixel or time-step columns, or a text column), a label and its probability out."""

    def load_context(self, context):
        spec = json.loads(Path(context.artifacts["spec"]).read_text())
        self.classes = np.asarray(spec["classes"])
        self.members = [(member, _load(member, context.artifacts[member["artifact"]])) for member in spec["members"]]

    def probabilities(self, frame: pd.DataFrame) -> np.ndarray:
        """(N, classes): the members' probabilities, averaged; ROWS_AT_ONCE rows at a time, so an
        ensemble holds one slice's inputs and a running sum, never members x rows x classes."""
        return np.concatenate([self._slice_probabilities(part) for part in _slices(frame)])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        probabilities = self.probabilities(pd.DataFrame(model_input))
        return pd.DataFrame(
            {"label": self.classes[probabilities.argmax(axis=1)], "probability": probabilities.max(axis=1)}
        )

    def _slice_probabilities(self, frame: pd.DataFrame) -> np.ndarray:
        total = None
        for member, model in self.members:
            probabilities = _probabilities(member, model, frame)
            total = probabilities.astype(np.float64) if total is None else total + probabilities
        return total / len(self.members)


ROWS_AT_ONCE = 8192  # rows whose inputs (token ids, spectrograms, ...) a member makes at a time


def _slices(frame: pd.DataFrame) -> list[pd.DataFrame]:
    """The frame in slices of ROWS_AT_ONCE rows; an empty frame is one empty slice."""
    return [frame.iloc[start : start + ROWS_AT_ONCE] for start in range(0, max(len(frame), 1), ROWS_AT_ONCE)]


# The types beyond skops' safe defaults (numpy, scipy, scikit-learn's public estimators) that a
# classical member may hold: MiniRocket's, and the calibrated SVC's parts (tasks/training/baseline.py).
# Anything else in a file is refused, never constructed.
TRUSTED_TYPES = {
    "models.rocket.RocketClassifier",
    "aeon.transformations.collection.convolution_based._minirocket.MiniRocket",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
}


class UntrustedMember(ValueError):
    """A member's file that mlpipe will not load: it would run code, or hold types it never writes."""


def _load(member: dict, path: str):
    if member["kind"] == "sklearn":
        return load_estimator(path)
    if member["kind"] == "onnx":
        from models.onnx_network import OnnxNetwork

        return OnnxNetwork(path)
    import torch

    from models.networks import build_network

    network = build_network(member["preprocessing"]["modality"], member["family"], **member["network_kwargs"])
    if member.get("quantization") == "int8-dynamic":  # its int8 weights load into the quantized layers
        from models.quantized import load_plain_state, quantized

        network = quantized(network)
        try:  # an int8 member of before plain tensors: its pickle is not run, its weights not taken
            load_plain_state(network, torch.load(path, map_location="cpu", weights_only=True))
        except (pickle.UnpicklingError, ValueError):
            raise UntrustedMember(f"{Path(path).name} is not plain tensors: run `mlpipe compress` again") from None
        return network.eval()
    if path.endswith(".safetensors"):  # a pretrained backbone's
        from safetensors.torch import load_model

        load_model(network, path)
        return network.eval()
    network.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return network.eval()


def load_estimator(path: str):
    """A classical member's estimator from its skops file, with no type beyond TRUSTED_TYPES. A
    version registered before skops kept a pickle, which is not loaded: it could run any code."""
    if not path.endswith(".skops"):
        raise UntrustedMember(f"{Path(path).name} is a pickle, which mlpipe no longer loads: register the model again")
    import zipfile

    import skops.io

    try:
        untrusted = skops.io.get_untrusted_types(file=path)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as error:
        raise UntrustedMember(f"{Path(path).name} is not a file skops wrote ({type(error).__name__})") from None
    if refused := sorted(set(untrusted) - TRUSTED_TYPES):
        raise UntrustedMember(f"{Path(path).name} holds types mlpipe never writes: {', '.join(refused)}")
    return skops.io.load(path, trusted=untrusted)


def _probabilities(member: dict, model, frame: pd.DataFrame) -> np.ndarray:
    """(N, classes) probabilities of one member, from the raw rows through its own preprocessing."""
    from models.networks import estimator_probabilities, predict_probabilities
    from models.preprocessing import baseline_inputs, model_inputs

    pre = member["preprocessing"]
    if member["kind"] == "sklearn":
        return estimator_probabilities(model, baseline_inputs(frame, pre), len(pre["classes"]))
    if member["kind"] == "onnx":
        return model.probabilities(model_inputs(frame, pre))
    if member.get("quantization"):
        from models.quantized import without_transformer_fast_path

        with without_transformer_fast_path():
            return predict_probabilities(model, model_inputs(frame, pre))
    return predict_probabilities(model, model_inputs(frame, pre))


mlflow.models.set_model(ClassifierModel())
