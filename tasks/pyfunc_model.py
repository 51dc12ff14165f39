"""The registered model, as an MLflow "model from code".

MLflow stores this file with every registered version and runs it when the version loads, so a
serving process needs torch, pandas and the `models` package (shipped in the version's
code_paths), not mlpipe, Prefect or Lightning.
"""

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd


class TorchClassifier(mlflow.pyfunc.PythonModel):
    """Raw rows in (pixel or time-step columns, or a text column), a label and its probability out."""

    def load_context(self, context):
        import torch

        from models.networks import build_network

        spec = json.loads(Path(context.artifacts["spec"]).read_text())
        self.preprocessing = spec["preprocessing"]
        self.network = build_network(self.preprocessing["modality"], spec["family"], **spec["network_kwargs"])
        weights = torch.load(context.artifacts["weights"], map_location="cpu", weights_only=True)
        self.network.load_state_dict(weights)
        self.network.eval()

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        import torch

        from models.preprocessing import model_inputs

        pre = self.preprocessing
        x = model_inputs(pd.DataFrame(model_input), pre)
        with torch.no_grad():
            probabilities = torch.softmax(self.network(torch.from_numpy(x)), dim=1).numpy()  # (N, classes)
        classes = np.asarray(pre["classes"])
        return pd.DataFrame({"label": classes[probabilities.argmax(axis=1)], "probability": probabilities.max(axis=1)})


mlflow.models.set_model(TorchClassifier())
