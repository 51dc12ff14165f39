"""A pretrained encoder in MLflow: a run `pretrain-<name>` (role `pretraining`) in the data set's
experiment with its settings, its loss per epoch and a loss curve, and the encoder logged as a pyfunc
(tasks/pretraining/encoder_model.py) registered as a new version of `<name>-encoder`.

`mlflow.artifacts.download_artifacts("models:/<name>-encoder/<version>")` gives the pyfunc's folder,
which holds the Hugging Face folder as its one sub-folder with a config.json (artifacts/encoder):
what `--backbone models:/...` loads."""

import time
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory

from tasks.pretraining.corpus import Corpus
from tasks.pretraining.encoder import Pretrained
from tasks.pretraining.report import loss_curve
from tasks.registry.run_logging import rounded
from tasks.types import Dataset

ROLE = "pretraining"
MODEL_FILE = Path(__file__).with_name("encoder_model.py")


@dataclass
class RegisteredEncoder:
    name: str  # <data set>-encoder
    version: str
    run_id: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def encoder_name(dataset: str) -> str:
    return f"{dataset}-encoder"


def register_encoder(
    experiment_id: str, dataset: Dataset, corpus: Corpus, result: Pretrained, tags: dict
) -> RegisteredEncoder:
    """Log the run and the encoder, and register it: tagged with `tags` (lineage), the role, the data set
    and its data_hash."""
    import mlflow
    import pandas as pd
    from mlflow.entities import Metric

    name, client = encoder_name(dataset.name), mlflow.MlflowClient()
    tags = {**tags, "mlpipe.role": ROLE, "dataset": dataset.name, "data_hash": dataset.data_hash}
    run_id = client.create_run(experiment_id, run_name=f"pretrain-{dataset.name}", tags=tags).info.run_id
    now = int(time.time() * 1000)
    metrics = [
        Metric(key, value, now, row["epoch"])  # step: the epoch, as the learning curves' x axis
        for row in result.history
        for key, value in rounded({k: v for k, v in row.items() if k != "epoch" and v is not None}).items()
    ]
    summary = {"pretrain/seconds": result.seconds, "pretrain/epochs": result.epochs}
    summary["pretrain/final_val_loss"] = result.final_val_loss
    summary = rounded({key: value for key, value in summary.items() if value is not None})
    metrics += [Metric(key, value, now, 0) for key, value in summary.items()]
    client.log_batch(run_id, metrics=metrics, params=_params(corpus, result), synchronous=True)
    with mlflow.start_run(run_id=run_id), TemporaryDirectory() as tmp:
        mlflow.log_artifact(str(loss_curve(result.history, f"{name}: masked-LM loss", Path(tmp) / "loss_curve.png")))
        info = mlflow.pyfunc.log_model(
            name="encoder",
            python_model=str(MODEL_FILE),
            artifacts={"encoder": str(result.folder)},
            signature=_signature(result.settings["hidden"]),
            # Training texts, never test rows. MLflow runs the model on them while logging: a
            # version that would not load or predict fails here, before it is registered.
            input_example=pd.DataFrame({"text": corpus.texts[:2]}),
            pip_requirements=requirements(),
        )
    version = mlflow.register_model(info.model_uri, name, tags=tags)
    client.set_registered_model_tag(name, "mlpipe.role", ROLE)  # tells it from the data sets' classifiers
    return RegisteredEncoder(name, str(version.version), run_id)


def _params(corpus: Corpus, result: Pretrained) -> list:
    from mlflow.entities import Param

    values = {
        **result.settings,
        "corpus.texts": len(corpus.texts),
        "corpus.dataset_rows": corpus.dataset_rows,
        "corpus.dropped_as_test": corpus.dropped_as_test,
        "corpus.files": ", ".join(f"{path} ({lines} lines)" for path, lines in corpus.file_lines.items()) or "none",
        "parameters": result.parameters,
        "train_texts": result.train_texts,
        "val_texts": result.val_texts,
        "vocab_size.learned": result.vocab_size,
        "stopped_by": result.stopped_by,
        "accelerator": result.accelerator,
    }
    return [Param(key, str(value)[:6000]) for key, value in values.items()]  # MLflow's longest value


def _signature(hidden: int):
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature

    return infer_signature(pd.DataFrame({"text": ["a text"]}), np.zeros((1, hidden), dtype=np.float32))


def requirements() -> list[str]:
    """The serving process's packages, pinned to this one's (MLflow would spend seconds inferring them)."""
    import mlflow
    import safetensors
    import tokenizers
    import torch
    import transformers

    return [
        f"mlflow=={mlflow.__version__}",
        f"torch=={torch.__version__.split('+')[0]}",
        f"transformers=={transformers.__version__}",
        f"tokenizers=={tokenizers.__version__}",
        f"safetensors=={safetensors.__version__}",
    ]
