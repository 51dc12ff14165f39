"""Validation evidence for issue 33's defaults on the four small sequence sets, without a test row:
`selection.cv_below` and `folds` (does choosing on folds beat choosing on the few validation
rows?), `train.min_steps` (do more optimiser steps help the networks out of fold?) and
`selection.rocket` (does MiniRocket earn its place?).

Every default candidate (cnn, rnn, transformer, the 1-NN baseline, MiniRocket) is trained on each
of the run's 5 folds over the training and validation rows, as a run does, for each `min_steps`
in MIN_STEPS; its out-of-fold probabilities are kept in outputs/bench/small_data/<name>-<steps>.npz
(delete one to train it again).

Then the choice: many times over, the pooled rows are halved; a rule chooses on one half and is
scored on the other by the same out-of-fold probabilities. "validation rows" chooses on as many
random rows of the choosing half as a run's validation part has (5 to 20), as runs did before;
"cross-validation" on the whole choosing half's out-of-fold figures, as runs do now.

    python small_data.py                  # the four sets (about an hour on 2 cores)
    python small_data.py gunpoint ecg200  # some of them
    MIN_STEPS=0 python small_data.py      # the defaults only (the choice and MiniRocket; no min_steps variant)
    STEPS_FAMILIES=cnn python small_data.py  # min_steps 1500 for the cnn alone
"""

import json
import os
import sys
import time

import numpy as np
from variants import shared_split

from common import ROOT, save

CACHE = ROOT / "outputs" / "bench" / "small_data"
NAMES = ("ecg200", "gunpoint", "osuleaf", "italypowerdemand")
NETWORKS = ("cnn", "rnn", "transformer")
# The networks trained for each min_steps above 0 (STEPS_FAMILIES=cnn: the FCN the published recipes train long)
STEPS_FAMILIES = tuple(os.environ.get("STEPS_FAMILIES", ",".join(NETWORKS)).split(","))
CLASSICAL = ("baseline", "rocket")
MIN_STEPS = tuple(int(s) for s in os.environ.get("MIN_STEPS", "0,1500").split(","))  # 0 first: the defaults
REPEATS = 200  # random halvings of the pooled rows, each used both ways


def out_of_fold(name: str, min_steps: int) -> dict[str, np.ndarray]:
    """Each candidate's out-of-fold probabilities over the training and validation rows, "y" the
    labels, "seconds" each candidate's training time over the folds, "val_rows" the run's validation rows."""
    path = CACHE / f"{name}-{min_steps}.npz"
    if path.exists():
        return dict(np.load(path))
    from tasks.evaluation.cross_validation import _out_of_fold, make_folds
    from tasks.training.baseline import fit_baseline
    from tasks.training.config import classical_configs, train_config
    from tasks.training.network import train

    dataset, parts, project = shared_split(name)
    project = project.model_copy(update={"train": project.train.model_copy(update={"min_steps": min_steps})})
    folds = make_folds(dataset, parts, project.selection.folds, project.seed)
    found = {"y": np.concatenate([dataset.class_indices(f.val) for f in folds.splits]), "val_rows": len(parts.val)}
    seconds = {}
    families = (*NETWORKS, *CLASSICAL) if min_steps == 0 else STEPS_FAMILIES  # the classical ones take no steps
    for family in families:
        started, models = time.perf_counter(), []
        for i, fold in enumerate(folds.splits):
            if family in NETWORKS:
                config = train_config(project, "sequence", family, project.seed, train_rows=len(fold.train))
                models.append(train(dataset, fold, config, CACHE / "training" / f"{name}-{min_steps}-{family}-{i}"))
            else:
                config = next(c for c in classical_configs(project, "sequence", project.seed, []) if c.family == family)
                models.append(fit_baseline(dataset, fold, config))
        found[family] = _out_of_fold(models, dataset, folds)
        seconds[family] = time.perf_counter() - started
        print(f"{name} min_steps={min_steps} {family}: {seconds[family]:.0f} s", flush=True)
    found["seconds"] = np.array([seconds[f] for f in seconds])
    found["families"] = np.array(list(seconds))
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(path, **found)
    return found


def accuracy(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(p.argmax(1) == y))


def chosen(probabilities: dict, families: tuple, rows: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A run's rule (tasks/evaluation/selection.py) chooses on `rows`: the chosen one's probabilities on every row."""
    from tasks.evaluation.selection import choose_among

    k = probabilities[families[0]].shape[1]
    choice = choose_among({f: probabilities[f][rows] for f in families}, y[rows], k, 0.0, ensemble=True)
    if choice.family == "ensemble":
        return np.mean([probabilities[f] for f in choice.members], axis=0)
    return probabilities[choice.family]


def held_out(probabilities: dict, families: tuple, val_rows: int) -> dict[str, float]:
    """Mean held-out-half accuracy of the choice made on a few rows and on a whole half."""
    y, rng = probabilities["y"], np.random.default_rng(0)
    few, half = [], []
    for _ in range(REPEATS):
        order = rng.permutation(len(y))
        halves = order[: len(y) // 2], order[len(y) // 2 :]
        for choosing, judging in (halves, halves[::-1]):
            sample = rng.choice(choosing, size=val_rows, replace=False)
            few.append(accuracy(chosen(probabilities, families, sample, y)[judging], y[judging]))
            half.append(accuracy(chosen(probabilities, families, choosing, y)[judging], y[judging]))
    return {"validation rows": round(float(np.mean(few)), 4), "cross-validation": round(float(np.mean(half)), 4)}


def main(names: list[str]) -> None:
    table = {}
    for name in names:
        runs = {steps: out_of_fold(name, steps) for steps in MIN_STEPS}
        default = runs[0]
        y = default["y"]
        table[name] = {
            "val_rows": int(default["val_rows"]),
            "pooled_rows": len(y),
            "oof": {
                f"{family}@{steps}": round(accuracy(run[family], y), 4)
                for steps, run in runs.items()
                for family in (*NETWORKS, *CLASSICAL)
                if family in run
            },
            "seconds": {
                f"{family}@{steps}": round(float(s), 1)
                for steps, run in runs.items()
                for family, s in zip(run["families"], run["seconds"], strict=True)
            },
            "choice": held_out(default, (*NETWORKS, "baseline"), int(default["val_rows"])),
            "choice with rocket": held_out(default, (*NETWORKS, *CLASSICAL), int(default["val_rows"])),
        }
        print(name, json.dumps(table[name]), flush=True)
        write(table)  # after each set: a cut-short run keeps what it measured


def _cell(figures: dict, key: str, form: str) -> str:
    return format(figures[key], form) if key in figures else "-"


def write(table: dict) -> None:
    rows = []
    for name, t in table.items():
        for rule in ("validation rows", "cross-validation"):
            value = t["choice with rocket"][rule]
            rows.append({"figure": f"{name}: held-out accuracy of the choice on {rule}", "value": f"{value:.4f}",
                         "target": "", "met": None})  # fmt: skip
    header = [f"{f}@{s}" for s in MIN_STEPS for f in NETWORKS] + [f"{f}@0" for f in CLASSICAL]
    lines = ["Out-of-fold accuracy per candidate (family@min_steps) over the training and validation rows:", ""]
    lines += ["| data | val rows | " + " | ".join(header) + " |", "|---|---|" + "---|" * len(header)]
    for name, t in table.items():
        lines.append(
            f"| {name} | {t['val_rows']} | "
            + " | ".join(f"{t['oof'][h]:.4f}" if h in t["oof"] else "-" for h in header)
            + " |"
        )
    lines += ["", "Training seconds over the 5 folds:", ""]
    lines += ["| data | " + " | ".join(header) + " |", "|---|" + "---|" * len(header)]
    for name, t in table.items():
        lines.append(
            f"| {name} | " + " | ".join(f"{t['seconds'][h]:.0f}" if h in t["seconds"] else "-" for h in header) + " |"
        )
    lines += ["", f"Held-out-half accuracy of the choice ({REPEATS} halvings, both ways; no test row read):", ""]
    lines += ["| data | networks + baseline: few rows | cross-validation | with rocket: few rows | cross-validation |"]
    lines += ["|---|---|---|---|---|"]
    for name, t in table.items():
        a, b = t["choice"], t["choice with rocket"]
        cells = [a["validation rows"], a["cross-validation"], b["validation rows"], b["cross-validation"]]
        lines.append(f"| {name} | " + " | ".join(f"{c:.4f}" for c in cells) + " |")
    title = "Small data: cross-validated choice, min_steps and MiniRocket on validation evidence (issue 33)"
    save("small_data", title, rows, "\n".join(lines), {"data_sets": table})


if __name__ == "__main__":
    main(sys.argv[1:] or list(NAMES))
