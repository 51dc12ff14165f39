"""Who serves: the champion/challenger gate, the serving check, and the alias history.

A new version becomes @champion only when there is none, or when it beats the current champion
re-evaluated on the same test rows by at least `min_delta` and a paired bootstrap over those
rows says the gain is not noise. Before the alias moves, the version must load and predict in
a fresh process. Every move is appended to a history kept on the registered model, which is
what `mlpipe rollback` walks back.
"""

import json
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tasks.errors import MlpipeError

HISTORY_TAG = "champion_history"  # JSON list of versions that were champion, oldest first
DEFAULT_POLICY = {"min_delta": 0.0, "bootstrap_samples": 1000, "confidence": 0.95, "seed": 0}


@dataclass
class Decision:
    promote: bool
    reason: str  # one sentence, stored as the `promotion` tag
    score: float  # the new version's test accuracy
    champion_version: str | None = None
    champion_score: float | None = None  # the champion re-evaluated on the same test rows
    delta: float | None = None
    interval: tuple[float, float] | None = None  # bootstrap interval of the delta

    def tags(self) -> dict[str, str]:
        tags = {"promotion": self.reason, "promotion.score": f"{self.score:.6f}"}
        if self.champion_score is not None:
            tags |= {
                "promotion.champion_version": str(self.champion_version),
                "promotion.champion_score": f"{self.champion_score:.6f}",
                "promotion.delta": f"{self.delta:+.6f}",
                "promotion.interval": f"[{self.interval[0]:+.6f}, {self.interval[1]:+.6f}]",
            }
        return tags

    def markdown(self, name: str, version: str) -> str:
        lines = [f"# Promotion of `{name}` v{version}: {'promoted' if self.promote else 'not promoted'}", ""]
        lines += [self.reason, "", "| | value |", "|---|---|", f"| challenger v{version} accuracy | {self.score:.4f} |"]
        if self.champion_score is not None:
            lines += [
                f"| champion v{self.champion_version} accuracy (same test rows) | {self.champion_score:.4f} |",
                f"| delta | {self.delta:+.4f} |",
                f"| bootstrap interval of the delta | [{self.interval[0]:+.4f}, {self.interval[1]:+.4f}] |",
            ]
        return "\n".join(lines)


def paired_bootstrap(
    new_correct: np.ndarray, old_correct: np.ndarray, samples: int, confidence: float, seed: int
) -> tuple[float, tuple[float, float]]:
    """Accuracy delta (new - old) and its bootstrap interval, resampling the same test rows for both."""
    diff = new_correct.astype(np.float64) - old_correct.astype(np.float64)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(samples, len(diff)))].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(diff.mean()), (float(low), float(high))


def decide(
    new_correct: np.ndarray,
    champion_version: str | None,
    champion_correct: np.ndarray | None,
    policy: dict | None = None,
) -> Decision:
    policy = DEFAULT_POLICY | (policy or {})
    score = float(new_correct.mean())
    if champion_version is None:
        return Decision(True, f"champion: first version (test/accuracy {score:.4f})", score)
    if champion_correct is None:
        reason = f"not promoted: champion v{champion_version} could not be re-evaluated"
        return Decision(False, reason, score, champion_version)
    delta, interval = paired_bootstrap(
        new_correct, champion_correct, policy["bootstrap_samples"], policy["confidence"], policy["seed"]
    )
    old = float(champion_correct.mean())
    facts = (
        f"test/accuracy {score:.4f} vs champion v{champion_version}'s {old:.4f} on the same rows, "
        f"delta {delta:+.4f}, {policy['confidence']:.0%} interval [{interval[0]:+.4f}, {interval[1]:+.4f}]"
    )
    if delta < policy["min_delta"] or delta <= 0:
        reason = f"not promoted: {facts}; the gain is below min_delta {policy['min_delta']}"
        return Decision(False, reason, score, champion_version, old, delta, interval)
    if interval[0] <= 0:
        reason = f"not promoted: {facts}; the interval includes 0, so the gain may be noise"
        return Decision(False, reason, score, champion_version, old, delta, interval)
    return Decision(True, f"champion: {facts}", score, champion_version, old, delta, interval)


def champion_correctness(client, name: str, frame: pd.DataFrame, labels: pd.Series) -> tuple[str, np.ndarray | None]:
    """(champion version, which of these rows it classifies right); (None, None) when no champion."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        champion = client.get_model_version_by_alias(name, "champion")
    except MlflowException:
        return None, None
    try:
        model = mlflow.pyfunc.load_model(f"models:/{name}/{champion.version}")
        predicted = model.predict(frame)["label"].to_numpy()
    except Exception:  # noqa: BLE001 - an unloadable champion must not stop the registration of a new one
        return str(champion.version), None
    return str(champion.version), predicted.astype(str) == labels.to_numpy().astype(str)


# The check's own process: the imports are most of its time, so it makes them before it reads the
# request, while the pipeline is still logging the model.
SERVING_CHECK = """
import io, json, sys
import mlflow, pandas as pd, torch
from mlflow.models import Model
line = sys.stdin.readline()
if not line.strip():
    sys.exit(0)
request = json.loads(line)
mlflow.set_tracking_uri(request["tracking_uri"])
path = mlflow.artifacts.download_artifacts(request["model_uri"])
model = mlflow.pyfunc.load_model(path)
example = Model.load(path).load_input_example(path)
given = pd.read_json(io.StringIO(request["rows"]), orient="split")
for rows in [example] + ([given] if len(given) else []):
    out = model.predict(rows)
    assert len(out) == len(rows) and {"label", "probability"} <= set(out.columns), out
print("ok")
"""


class ServingCheck:
    """Loads a registered version in a fresh Python process and predicts on its input example and
    some rows. Start it early (it is a context manager); `run` raises if the version cannot serve."""

    def __enter__(self) -> "ServingCheck":
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVING_CHECK],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        return self

    def run(self, tracking_uri: str, name: str, version: str, rows: pd.DataFrame | None = None, timeout: int = 300):
        import mlflow

        rows = rows if rows is not None else pd.DataFrame()
        # Where the version's files are: a local store's are read as they lie, no registry lookup.
        model_uri = mlflow.MlflowClient(tracking_uri).get_model_version_download_uri(name, str(version))
        request = {"tracking_uri": tracking_uri, "model_uri": model_uri}
        request["rows"] = rows.to_json(orient="split", index=False)
        try:
            out, err = self.process.communicate(json.dumps(request) + "\n", timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise MlpipeError(f"serving check of {name} v{version}: no prediction within {timeout} s") from None
        if self.process.returncode != 0 or not out.startswith("ok"):
            last = (err.strip().splitlines() or ["no output"])[-1]
            raise MlpipeError(f"serving check of {name} v{version} failed in a fresh process: {last}")

    def __exit__(self, *exc_info) -> None:
        if self.process.poll() is None:
            try:
                self.process.communicate("\n", timeout=30)  # no request: it exits
            except subprocess.TimeoutExpired:
                self.process.kill()


def serving_check(
    tracking_uri: str, name: str, version: str, rows: pd.DataFrame | None = None, timeout: int = 300
) -> None:
    """Load the version in a fresh Python process and predict on its input example and `rows`;
    raise if it cannot."""
    with ServingCheck() as check:
        check.run(tracking_uri, name, version, rows, timeout)


def move_champion(client, name: str, version: str, reason: str) -> None:
    """Point @champion at the version and append it to the recorded history."""
    history = champion_history(client, name)
    client.set_registered_model_alias(name, "champion", version)
    client.set_registered_model_tag(name, HISTORY_TAG, json.dumps([*history, str(version)]))
    client.set_model_version_tag(name, version, "promotion", reason)


def champion_history(client, name: str) -> list[str]:
    tags = client.get_registered_model(name).tags
    return json.loads(tags.get(HISTORY_TAG, "[]"))


def rollback(client, name: str) -> tuple[str, str]:
    """Give @champion back to the previous champion; (from version, to version)."""
    history = champion_history(client, name)
    if len(history) < 2:
        raise MlpipeError(f"{name} has no earlier champion to roll back to (history: {history or 'empty'})")
    current, previous = history[-1], history[-2]
    client.set_registered_model_alias(name, "champion", previous)
    client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history[:-1]))
    client.set_model_version_tag(name, current, "rolled_back", f"champion until rollback to v{previous}")
    client.set_model_version_tag(name, previous, "promotion", f"champion again: rollback from v{current}")
    return current, previous
