"""`mlpipe reproduce`: retrain a registered version from what its tags and runs recorded.

The data comes back by its DVC hash (from the cache or the remote), the split from the recorded
seeds and fractions (all training and validation rows for the refit of a cross-validated
choice), the candidate from its recorded train_config.json. The reproduced test
metrics are set against the registered ones; nothing is registered.
"""

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from tasks.infra.errors import MlpipeError
from tasks.infra.settings import Settings

METRICS = ("test/accuracy", "test/f1_macro")


@dataclass
class Reproduction:
    data_hash: str
    out_dir: Path
    rows: list[tuple[str, float, float]]  # metric, registered, reproduced
    warnings: list[str] = field(default_factory=list)

    def worst_difference(self) -> float:
        return max(abs(reproduced - registered) for _, registered, reproduced in self.rows)


def reproduce(name: str, version: str, settings: Settings) -> Reproduction:
    """The version retrained from what its tags and runs recorded, its test metrics beside the registered ones."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from tasks.evaluation.scoring import evaluate
    from tasks.registry.store import connect

    connect(settings, name, create=False)
    client = mlflow.MlflowClient()
    try:
        registered = client.get_model_version(name, version)
    except MlflowException:
        raise MlpipeError(f"{name} has no version {version}") from None
    candidate = client.get_run(registered.run_id)
    parent = client.get_run(candidate.data.tags["mlflow.parentRunId"])
    data_hash = registered.tags["data_hash"]
    out_dir = settings.outputs_dir / name / f"reproduce-v{version}"
    dataset = _restored_dataset(settings, name, version, data_hash, parent.info.run_id, out_dir)
    parts = _recorded_split(dataset, parent.data.params, candidate.data.tags)
    config = mlflow.artifacts.load_dict(f"runs:/{candidate.info.run_id}/train_config.json")
    # Always trained anew: the checkpoints of an earlier reproduction would make it a resumption.
    shutil.rmtree(out_dir / "training", ignore_errors=True)
    model = retrain(dataset, parts, config, out_dir / "training")
    evaluation = evaluate(model, dataset, parts, out_dir / model.family)
    rows = [(m, candidate.data.metrics[m], evaluation.metrics[m]) for m in METRICS]
    return Reproduction(data_hash, out_dir, rows, _code_warnings(version, registered.tags.get("git_sha")))


def _restored_dataset(settings: Settings, name: str, version: str, data_hash: str, parent_run_id: str, out_dir: Path):
    """The version's data set, by its DVC hash, read by the spec its run logged."""
    import mlflow
    import yaml
    from mlflow.exceptions import MlflowException

    from tasks.data.builtin import BUILT_IN, DIGITS_SPEC
    from tasks.data.loading import load_spec
    from tasks.data.versioning import restore
    from tasks.infra.retrying import is_transient

    folder = restore(settings.root, data_hash, out_dir / "data" / name)
    spec_path = folder.parent / f"{name}.yaml"  # beside the data, as data/<name>.yaml is
    try:
        spec = mlflow.artifacts.load_text(f"runs:/{parent_run_id}/dataset/spec.yaml")
    except (MlflowException, OSError) as error:
        if name not in BUILT_IN or is_transient(error):
            raise MlpipeError(f"{name} v{version}: its run has no data set spec: {error}") from None
        spec = yaml.safe_dump(DIGITS_SPEC, sort_keys=False)  # digits registered before it had a spec
    spec_path.write_text(spec)
    dataset = load_spec(spec_path)
    dataset.data_hash = data_hash
    return dataset


def _recorded_split(dataset, params: dict, candidate_tags: dict):
    """The split from the run's recorded seeds and fractions; all training and validation rows for
    the refit of a cross-validated choice."""
    from tasks.data.splitting import split

    test_fraction = params.get("split.test_fraction")
    parts = split(
        dataset.frame[dataset.label_column].to_numpy(),
        float(test_fraction) if test_fraction not in (None, "None") else dataset.test_fraction,
        float(params["split.val_fraction"]),
        int(params["split_seed"]),
        int(params["seed"]),
        dataset.test_positions,
    )
    if candidate_tags.get("selected_by", "").startswith("cv"):  # the refit of a cross-validated choice
        from tasks.evaluation.cross_validation import refit_split

        parts = refit_split(parts)
    return parts


def _code_warnings(version: str, trained_with: str | None) -> list[str]:
    """A line when the version was trained with other code than this checkout's."""
    from tasks.infra.lineage import code_version

    now = code_version()["git_sha"]
    if trained_with and trained_with != now:
        return [f"v{version} was trained with mlpipe {trained_with[:12]}; this is {now[:12]}"]
    return []


def retrain(dataset, parts, config: dict, out_dir: Path):
    """A candidate from its recorded train_config.json: a network, a classical one or an ensemble."""
    from tasks.evaluation.selection import Ensemble
    from tasks.infra.vocabulary import CLASSICAL_FAMILIES, ENSEMBLE
    from tasks.training.baseline import fit_baseline
    from tasks.training.network import train
    from tasks.types import BaselineConfig, TrainConfig

    if config["family"] in CLASSICAL_FAMILIES:
        return fit_baseline(dataset, parts, BaselineConfig(**config))
    if config["family"] == ENSEMBLE:
        return Ensemble([retrain(dataset, parts, member, out_dir) for member in config["members"]])
    return train(dataset, parts, TrainConfig(**config), out_dir / config["family"])
