"""Validation evidence for a default: one family, trained with params.yaml's settings or a variant
of them, on shared data sets, without the pipeline around it (no Prefect, MLflow or DVC).

    python variants.py cnn trec,sst2 '{"vocab_size": 8000, "lowercase": true}' word-level

Prints, and appends to bench/results/variants.jsonl, the validation accuracy (what a default is
chosen on) and, for the record only, the test accuracy of each run. Defaults are picked by the
mean validation accuracy over all the data sets of a modality, never by test figures.
"""

import json
import sys
import tempfile
import time
from pathlib import Path

from common import RESULTS, ROOT

DATASETS = Path(__file__).with_name("datasets")


def shared_split(name: str):
    """(dataset, split, params.yaml defaults) of a shared data set, split as a default run splits it."""
    from tasks.data.builtin import write_digits
    from tasks.data.loading import load_spec
    from tasks.data.splitting import split
    from tasks.infra.params import load_params
    from tasks.infra.settings import Settings

    if name == "digits":  # the built-in set, written to a scratch folder: no DVC repository needed
        folder = Path(tempfile.mkdtemp(prefix="mlpipe-variants-")) / "digits"
        write_digits(folder)
        dataset = load_spec(folder.with_suffix(".yaml"))
    else:
        dataset = load_spec(DATASETS / f"{name}.yaml")
    project = load_params(Settings(root=ROOT))
    test_fraction = project.split.test_fraction if name == "digits" else dataset.test_fraction
    labels = dataset.frame[dataset.label_column].to_numpy()
    parts = split(labels, test_fraction, project.split.val_fraction, 0, project.seed, dataset.test_positions)
    return dataset, parts, project


def variant_config(family: str, modality: str, project, overrides: dict):
    """The TrainConfig of a default run, with `overrides` over the family's params.yaml section."""
    from tasks.infra.params import ProjectParams
    from tasks.training.config import train_config

    raw = project.model_dump(exclude_none=True)
    raw["families"][modality][family] |= overrides
    return train_config(ProjectParams.model_validate(raw), modality, family, seed=project.seed)


def run(family: str, name: str, overrides: dict, tag: str) -> dict:
    import numpy as np

    from tasks.training.network import train

    dataset, parts, project = shared_split(name)
    config = variant_config(family, dataset.modality, project, overrides)
    scratch = Path(tempfile.mkdtemp(prefix="mlpipe-variants-"))
    started = time.perf_counter()
    model = train(dataset, parts, config, scratch / "training")

    def accuracy(rows: np.ndarray) -> float:
        predicted = model.predict_proba(dataset.frame.iloc[rows]).argmax(axis=1)
        return round(float(np.mean(predicted == dataset.class_indices(rows))), 4)

    return {
        "data": name,
        "family": family,
        "variant": tag,
        "overrides": overrides,
        "val": accuracy(parts.val),
        "test": accuracy(parts.test),
        "val_rows": len(parts.val),
        "best_epoch": model.best_epoch,
        "epochs": model.epochs_run,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(family: str, names: str, overrides: str = "{}", tag: str = "default") -> None:
    RESULTS.mkdir(exist_ok=True)
    for name in names.split(","):
        result = run(family, name, json.loads(overrides), tag)
        print(json.dumps(result), flush=True)
        with (RESULTS / "variants.jsonl").open("a") as log:
            log.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
