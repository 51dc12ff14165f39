"""Validation evidence for the rule that chooses a run's candidate (tasks/evaluation/selection.py).

Trains every default candidate on shared data sets and keeps their validation probabilities
(outputs/bench/selection/<name>.npz; delete a file to retrain). Then, many times over, a rule
chooses on one random half of the validation rows and is scored on the other half, so rules are
compared on validation rows alone: the test rows are never read.

    python selection_rules.py                   # all nine data sets (about 25 minutes on 2 cores)
    python selection_rules.py trec sst2         # some of them

Writes bench/results/selection_rules.json: each rule's held-out-half accuracy per data set.
"""

import json
import sys
import time

import numpy as np
from variants import shared_split, variant_config

from common import ROOT, save

CACHE = ROOT / "outputs" / "bench" / "selection"
NAMES = ("digits", "sms_spam", "trec", "subj", "sst2", "ecg200", "gunpoint", "osuleaf", "italypowerdemand")
NETWORKS = ("cnn", "rnn", "transformer")
REPEATS = 30  # random halvings per data set, each used both ways


def validation_probabilities(name: str) -> dict[str, np.ndarray]:
    """Each default candidate's validation probabilities, and the validation labels as "y"."""
    path = CACHE / f"{name}.npz"
    if path.exists():
        return dict(np.load(path))
    from tasks.training.baseline import fit_baseline
    from tasks.training.config import baseline_config
    from tasks.training.network import train

    dataset, parts, project = shared_split(name)
    rows = dataset.frame.iloc[parts.val]
    found = {"y": dataset.class_indices(parts.val)}
    for family in NETWORKS:
        started = time.perf_counter()
        config = variant_config(family, dataset.modality, project, {})
        found[family] = train(dataset, parts, config, CACHE / "training" / name / family).predict_proba(rows)
        print(f"{name} {family}: {time.perf_counter() - started:.0f} s", flush=True)
    baseline = fit_baseline(dataset, parts, baseline_config(project, dataset.modality, project.seed))
    found["baseline"] = baseline.predict_proba(rows)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(path, **found)
    return found


def _mean(probabilities: dict, members) -> np.ndarray:
    return np.mean([probabilities[m] for m in members], axis=0)


def chosen_rule(probabilities: dict, rows: np.ndarray, y: np.ndarray) -> np.ndarray:
    """tasks.evaluation.selection as a run uses it: the ensemble of those close to the best, then the choice."""
    from tasks.evaluation.selection import choose_among
    from tasks.infra.vocabulary import ENSEMBLE

    families = (*NETWORKS, "baseline")
    k = probabilities["baseline"].shape[1]
    choice = choose_among({f: probabilities[f][rows] for f in families}, y[rows], k, 0.0, ensemble=True)
    return _mean(probabilities, choice.members) if choice.family == ENSEMBLE else probabilities[choice.family]


def ties_rule(probabilities: dict, rows: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The rule before issue 33: the same ensemble, chosen only on a tie with the best candidate."""
    from tasks.evaluation.selection import add_ensemble, choose, scores_of

    candidates = {f: probabilities[f][rows] for f in (*NETWORKS, "baseline")}
    members = add_ensemble(candidates, y[rows])
    k = probabilities["baseline"].shape[1]
    family = choose({f: scores_of(p, y[rows], k) for f, p in candidates.items()}, 0.0).family
    return _mean(probabilities, members) if family == "ensemble" else probabilities[family]


def earlier_rule(probabilities: dict, rows: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The rule before: the networks' ensemble only, taking a tie only on a lower log loss."""
    from tasks.evaluation.selection import scores_of

    candidates = {f: probabilities[f] for f in (*NETWORKS, "baseline")}
    candidates["ensemble"] = _mean(probabilities, NETWORKS)
    k = probabilities["baseline"].shape[1]
    scores = {f: scores_of(p[rows], y[rows], k) for f, p in candidates.items()}

    def key(f: str) -> tuple:
        s = scores[f]
        return (s["val/accuracy"], s["val/f1_macro"], f != "baseline", -s["val/loss"])

    return candidates[max(scores, key=key)]


def best_single(probabilities: dict, rows: np.ndarray, y: np.ndarray) -> np.ndarray:
    """No ensemble: the most accurate single candidate on the choosing half."""
    family = max((*NETWORKS, "baseline"), key=lambda f: np.mean(probabilities[f][rows].argmax(1) == y[rows]))
    return probabilities[family]


def always_ensemble(probabilities: dict, rows: np.ndarray, y: np.ndarray) -> np.ndarray:
    return _mean(probabilities, [*NETWORKS, "baseline"])


def all_members(probabilities: dict, rows: np.ndarray, y: np.ndarray) -> np.ndarray:
    """As chosen, with every candidate in the ensemble however weak."""
    from tasks.evaluation.selection import choose, scores_of
    from tasks.infra.vocabulary import ENSEMBLE

    candidates = {f: probabilities[f] for f in (*NETWORKS, "baseline")}
    candidates[ENSEMBLE] = always_ensemble(probabilities, rows, y)
    k = probabilities["baseline"].shape[1]
    return candidates[choose({f: scores_of(p[rows], y[rows], k) for f, p in candidates.items()}, 0.0).family]


RULES = {
    "chosen (tasks.evaluation.selection)": chosen_rule,
    "ensemble on ties only (before issue 33)": ties_rule,
    "before (networks' ensemble, ties on log loss)": earlier_rule,
    "ensemble of every candidate, ties to it": all_members,
    "best single candidate": best_single,
    "always the ensemble of every candidate": always_ensemble,
}


def held_out_accuracy(probabilities: dict, rule) -> float:
    y = probabilities["y"]
    rng, scores = np.random.default_rng(0), []
    for _ in range(REPEATS):
        order = rng.permutation(len(y))
        halves = order[: len(y) // 2], order[len(y) // 2 :]
        for choosing, judging in (halves, halves[::-1]):
            scores.append(np.mean(rule(probabilities, choosing, y)[judging].argmax(1) == y[judging]))
    return round(float(np.mean(scores)), 4)


def main(names: list[str]) -> None:
    table = {}
    for name in names:
        probabilities = validation_probabilities(name)
        table[name] = {rule: held_out_accuracy(probabilities, fn) for rule, fn in RULES.items()}
        table[name]["validation rows"] = len(probabilities["y"])
        print(name, json.dumps(table[name]), flush=True)
    means = {rule: round(float(np.mean([table[n][rule] for n in names])), 4) for rule in RULES}
    print("mean", json.dumps(means))
    chosen = next(iter(RULES))
    figure = "{}: mean held-out-half validation accuracy"
    rows = [{"figure": figure.format(r), "value": f"{v:.4f}", "target": "", "met": None} for r, v in means.items()]
    lines = ["| data | validation rows | " + " | ".join(RULES) + " |", "|" + "---|" * (len(RULES) + 2)]
    for n in names:
        cells = [str(table[n]["validation rows"]), *(f"{table[n][r]:.4f}" for r in RULES)]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    notes = (
        f"Each rule chooses on one random half of the validation rows and is scored on the other ({REPEATS} "
        f"halvings, both ways); the test rows are never read. `{chosen}` is what a run does.\n\n" + "\n".join(lines)
    )
    save("selection_rules", "Validation evidence for the selection rule (issue 13)", rows, notes, {"data_sets": table})


if __name__ == "__main__":
    main(sys.argv[1:] or list(NAMES))
