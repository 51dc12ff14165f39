"""A compression run in MLflow, and its @compact version.

One parent run per `mlpipe compress` (role `compression`) with a child run per variant and one for
the champion re-measured beside them (role `variant`): the leaderboard's size and latency columns.
The chosen variant is registered as a new version of the data set's model from its child run; it
takes @compact only after it serves in a fresh process with the labels it was judged by. A rerun
with the same champion, settings and code finds that version (`compression_key`) and does nothing.
"""

from dataclasses import dataclass

from tasks.compression.weighing import Weighed
from tasks.infra.errors import MlpipeError, redact
from tasks.infra.fingerprints import cached_code_fingerprint, digest
from tasks.infra.retrying import TransientError
from tasks.types import Dataset, Split

ALIAS = "compact"
ROLE_RUN, ROLE_VARIANT = "compression", "variant"
CODE = ("tasks/compression", "models", "tasks/registry/pyfunc_model.py")  # what makes the variants


@dataclass
class Compression:
    dataset: str
    champion_version: str
    parent_run_id: str | None
    version: str | None  # the @compact version; None: nothing registered
    reason: str
    rows: list[dict]  # one per variant and the champion: name, accuracies, cost, verdict
    reused: bool = False

    def markdown(self) -> str:
        head = f"# Compression of `{self.dataset}` v{self.champion_version}: "
        head += f"@{ALIAS} is v{self.version}" if self.version else "nothing registered"
        lines = [head, "", self.reason, ""]
        lines += ["| variant | test accuracy | size (KB) | p50 ms/row | p95 ms/row | rows/s at 256 | verdict |"]
        lines += ["|---|---|---|---|---|---|---|"]
        for row in self.rows:
            cells = [row["variant"], f"{row['test_accuracy']:.4f}", f"{row['size_bytes'] / 1024:.1f}"]
            cells += [f"{row['p50_ms']:.3f}", f"{row['p95_ms']:.3f}", f"{row['rows_per_second']:.0f}"]
            lines.append("| " + " | ".join([*cells, row["decision"]]) + " |")
        return "\n".join(lines)


def compression_key(dataset: Dataset, champion_version: str, settings: dict) -> str:
    return digest(dataset.name, dataset.data_hash, champion_version, settings, cached_code_fingerprint(CODE))


def compressed_before(client, name: str, key: str):
    """The @compact version an identical run registered and decided, or None."""
    found = client.search_model_versions(f"name = '{name}' and tags.compression_key = '{key}'")
    done = [v for v in found if "compression" in v.tags]
    return max(done, key=lambda v: int(v.version)) if done else None


def log_runs(
    experiment_id: str, champion_version: str, champion: Weighed, variants: list[Weighed], params: dict, tags: dict
) -> tuple[str, dict[str, str]]:
    """(parent run id, variant name -> child run id): the run and what each variant weighed."""
    import mlflow

    client = mlflow.MlflowClient()
    parent = client.create_run(
        experiment_id,
        run_name=f"compress-v{champion_version}",
        tags={**tags, "mlpipe.role": ROLE_RUN, "compact_of": champion_version},
    ).info.run_id
    for key, value in params.items():
        client.log_param(parent, key, value)
    children = {}
    for weighed in [champion, *variants]:
        child_tags = {
            **tags,
            "mlflow.parentRunId": parent,
            "mlpipe.role": ROLE_VARIANT,
            "variant": weighed.name,
            "family": weighed.served.family,
            "compact_of": champion_version,
            "variant.how": weighed.served.how,
            **(weighed.verdict.tags() if weighed.verdict else {}),
        }
        run = client.create_run(experiment_id, run_name=weighed.name, tags=child_tags).info.run_id
        for name, value in weighed.metrics().items():
            client.log_metric(run, name, value)
        client.set_terminated(run)
        children[weighed.name] = run
    return parent, children


def register_compact(
    client,
    settings,
    dataset: Dataset,
    split: Split,
    chosen: Weighed,
    run_id: str,
    tags: dict,
    process,
) -> tuple[str, str | None]:
    """(version, why it did not take @compact, or None): register the chosen variant; @compact once
    it serves in `process` (a fresh one) with the labels it was judged by."""
    from tasks.registry.packaging import log_model_files
    from tasks.registry.promotion_lock import promotion_lock
    from tasks.registry.serving import serving_check

    name = dataset.name
    version = log_model_files(dataset, split, chosen.served.artifacts(), chosen.served.probabilities, run_id, tags)
    features = dataset.frame.iloc[split.test][dataset.feature_columns]
    try:
        serving_check(process, settings.tracking_uri, name, version, features, chosen.labels)
    except TransientError:
        raise
    except MlpipeError as failed:
        why = f"not @{ALIAS}: {redact(str(failed))}"
        client.set_model_version_tag(name, version, "compression", why)
        return version, why
    with promotion_lock(settings, name):  # the lock every alias move of this model takes
        client.set_registered_model_alias(name, ALIAS, version)
    client.update_model_version(name, version, description=chosen.verdict.reason)
    client.set_model_version_tag(name, version, "compression", f"@{ALIAS}: {chosen.verdict.reason}")  # the marker
    return version, None


def row(weighed: Weighed) -> dict:
    decision = "reference" if weighed.verdict is None else weighed.verdict.tags()["compression.decision"]
    return {
        "variant": weighed.name,
        "how": weighed.served.how,
        "val_accuracy": weighed.val_accuracy,
        "test_accuracy": weighed.test_accuracy,
        **{k.removeprefix("compression/"): v for k, v in weighed.cost.metrics().items()},
        "decision": decision,
        **({"delta": weighed.verdict.delta, "ci_low": weighed.verdict.interval[0]} if weighed.verdict else {}),
    }
