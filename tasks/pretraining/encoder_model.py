"""A pretrained encoder as an MLflow "model from code" (`mlpipe pretrain` registers it).

MLflow stores this file with the version and runs it when the version loads: a serving process
needs torch, transformers and pandas, not mlpipe. The encoder itself is the artifact `encoder`, a
Hugging Face folder, which `mlpipe run --backbone models:/<name>-encoder/<version>` fine-tunes.
"""

import mlflow
import numpy as np
import pandas as pd

BATCH = 64


class EncoderModel(mlflow.pyfunc.PythonModel):
    """A `text` column in, (N, hidden) embeddings out: the mean of the last layer over each text's tokens."""

    def load_context(self, context):
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging

        logging.set_verbosity_error()  # the masked-LM head it was saved with is not needed here
        folder = context.artifacts["encoder"]
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModel.from_pretrained(folder).eval()

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        import torch

        texts = pd.DataFrame(model_input)["text"].astype(str).tolist()
        pooled = []
        for start in range(0, len(texts), BATCH):
            inputs = self.tokenizer(texts[start : start + BATCH], padding=True, truncation=True, return_tensors="pt")
            with torch.no_grad():
                hidden = self.model(**inputs).last_hidden_state  # (B, T, H)
            mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, T, 1): no padding in the mean
            pooled.append(((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).numpy())  # (B, H)
        return np.concatenate(pooled) if pooled else np.zeros((0, self.model.config.hidden_size), np.float32)


mlflow.models.set_model(EncoderModel())
