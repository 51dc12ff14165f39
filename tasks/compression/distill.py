"""The distilled student: a smaller network trained, with Lightning, on the teacher's probabilities
of the training rows (softened by a temperature) beside the true labels (Hinton et al., 2015).

Any champion can teach, a network, the baseline or an ensemble: only its probabilities on raw rows
are used. Validation and early stopping look at the true labels of the validation rows only."""

from pathlib import Path

import numpy as np

from tasks.types import Dataset, Split, TrainConfig


def distill(
    dataset: Dataset,
    split: Split,
    teacher_probabilities: np.ndarray,
    config: TrainConfig,
    out_dir: Path,
    temperature: float,
    soft_weight: float,
):
    """The student (a TrainedModel) of `config`'s family and settings. teacher_probabilities: (rows
    of split.train, classes), the teacher's on the training rows in that order."""
    from tasks.training.network import train
    from tasks.training.progress import EpochLines

    if teacher_probabilities.shape != (len(split.train), len(dataset.classes)):
        raise ValueError(f"teacher probabilities {teacher_probabilities.shape} do not fit the training rows")
    settings = {"temperature": float(temperature), "soft_weight": float(soft_weight)}
    return train(
        dataset,
        split,
        config,
        out_dir,
        callbacks=[EpochLines(f"student {config.family}")],
        soft_train=teacher_probabilities.astype(np.float32),
        distillation=settings,
    )
