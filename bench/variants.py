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
    from tasks.datasets import load_spec, split, write_digits
    from tasks.params import load_params
    from tasks.settings import Settings

    if name == "digits":  # the built-in set, written to a scratch folder: no DVC repository needed
        folder = Path(tempfile.mkdtemp(prefix="mlpipe-variants-")) / "digits"
        write_digits(folder)
        dataset = load_spec(folder.with_suffix(".yaml"))
    else:
        dataset = load_spec(DATASETS / f"{name}.yaml")
    defaults = load_params(Settings(root=ROOT))
    test_fraction = defaults["split"]["test_fraction"] if name == "digits" else dataset.test_fraction
    labels = dataset.frame[dataset.label_column].to_numpy()
    parts = split(labels, test_fraction, defaults["split"]["val_fraction"], 0, defaults["seed"], dataset.test_positions)
    return dataset, parts, defaults


def train_config(family: str, modality: str, defaults: dict, overrides: dict):
    """The TrainConfig of a default run, with `overrides` over params.yaml's settings."""
    from tasks.params import OPTIMISER_KEYS, TEXT_KEYS, TRAINER_KEYS, family_params
    from tasks.training import TrainConfig

    sections = family_params(defaults, modality, family)
    for key, value in overrides.items():
        section = (
            "optimiser"
            if key in OPTIMISER_KEYS
            else "trainer"
            if key in TRAINER_KEYS
            else "text"
            if key in TEXT_KEYS
            else "network"
        )
        sections[section][key] = value
    trainer = sections["trainer"]
    return TrainConfig(
        family=family,
        max_epochs=trainer["max_epochs"],
        batch_size=trainer["batch_size"],
        patience=trainer["patience"],
        monitor=trainer.get("monitor", "val/loss"),
        class_weighting=trainer.get("class_weighting", "sqrt"),
        seed=defaults["seed"],
        optimiser=sections["optimiser"],
        network=sections["network"],
        text=sections["text"],
    )


def run(family: str, name: str, overrides: dict, tag: str) -> dict:
    import numpy as np

    from tasks.training import train

    dataset, parts, defaults = shared_split(name)
    config = train_config(family, dataset.modality, defaults, overrides)
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
