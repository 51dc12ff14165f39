"""Where the networks win and lose: a default `mlpipe run` on each shared data set, as a user runs it.

Each data set (bench/datasets/<name>.yaml, reading ../shared/datasets/) trains every candidate
with the defaults in a fresh project with the embedded stores; `mlpipe compare --format json`
gives each candidate's validation accuracy (what chose) and test accuracy (what judges). Writes
bench/results/quality.json: the targets of bench/datasets/targets.yaml as rows, the data set x
candidate table in its notes.

    python quality.py                 # all ten data sets (about an hour on 2 cores)
    python quality.py trec osuleaf    # some of them; the others keep their last figures
"""

import json
import subprocess
import sys
import time
from pathlib import Path

import yaml
from pipeline_cost import environment, fresh_project

from common import RESULTS, ROOT, save

DATASETS = Path(__file__).with_name("datasets")
NAMES = ("digits", "sms_spam", "trec", "subj", "sst2", "ecg200", "gunpoint", "osuleaf", "italypowerdemand", "fsdd")
COLUMNS = ("baseline", "rocket", "cnn", "rnn", "transformer", "ensemble")
MLPIPE = str(Path(sys.executable).with_name("mlpipe"))


def run_default(name: str) -> dict:
    """One default run in a fresh project: wall time and each candidate's figures."""
    root = fresh_project()
    write_params(root, name)
    dataset = name if name == "digits" else str(DATASETS / f"{name}.yaml")
    started = time.perf_counter()
    done = subprocess.run(
        [MLPIPE, "run", "--dataset", dataset], env=environment(root), capture_output=True, text=True, check=False
    )
    minutes = (time.perf_counter() - started) / 60
    if done.returncode != 0:
        raise SystemExit(f"mlpipe run --dataset {name} failed: {done.stderr.strip().splitlines()[-1:]}")
    rows = json.loads(
        subprocess.run(
            [MLPIPE, "compare", "--dataset", dataset, "--format", "json"],
            env=environment(root),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    candidates = {
        row["family"]: {
            "val": row["val_accuracy"],
            "test": row["test_accuracy"],
            "selected": row["selected"],
            "selected_by": row["selected_by"],  # val/accuracy, or cv5/accuracy: then "val" is out-of-fold
            "val_sd": row.get("val_accuracy_sd"),
            "flags": row["flags"],
        }
        for row in rows
    }
    notes = [line for line in done.stdout.splitlines() if "majority-class rate" in line or "No network" in line]
    return {"minutes": round(minutes, 2), "candidates": candidates, "notes": notes}


def write_params(root: Path, name: str) -> None:
    """The project's params.yaml: mlpipe's own, with the validation limits the data set needs."""
    checks = yaml.safe_load((DATASETS / "targets.yaml").read_text()).get("checks", {}).get(name)
    if checks:
        params = yaml.safe_load((ROOT / "params.yaml").read_text())
        params["validation"]["checks"] |= checks
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def table(results: dict) -> str:
    """Markdown: a row per data set, validation / test accuracy per candidate (chosen one in bold)."""
    lines = [
        "Validation / test accuracy per candidate (**bold**: chosen on validation and registered); "
        "baseline: scikit-learn (TF-IDF + logistic regression, RBF SVC on pixels, 1-NN on z-normalised series, "
        "RBF SVC on log-mel band statistics); "
        "rocket: MiniRocket + ridge (sequences). Chosen by `cv5/accuracy`: the validation figure is out-of-fold "
        "over the training and validation rows, and the test figure is the refit's.",
        "",
        f"| data | {' | '.join(COLUMNS)} | chosen by | champion test | target | published | minutes |",
        f"|---|{'---|' * len(COLUMNS)}---|---|---|---|---|",
    ]
    targets = yaml.safe_load((DATASETS / "targets.yaml").read_text())
    for name in NAMES:
        if name not in results:
            continue
        result = results[name]
        cells = []
        for family in COLUMNS:
            c = result["candidates"].get(family)
            if c is None:
                cells.append("-")
                continue
            cell = f"{c['val']:.3f} / {c['test']:.3f}" + (" (below majority)" if c["flags"] else "")
            cells.append(f"**{cell}**" if c["selected"] else cell)
        chosen = next(c for c in result["candidates"].values() if c["selected"])
        target, published = targets["accuracy"][name], targets["published"].get(name, "-")
        by = chosen.get("selected_by") or "val/accuracy"
        cells += [by, f"{chosen['test']:.4f}", str(target), str(published), f"{result['minutes']:.1f}"]
        lines.append(f"| {name} | {' | '.join(cells)} |")
    return "\n".join(lines)


def target_rows(results: dict) -> list[dict]:
    targets = yaml.safe_load((DATASETS / "targets.yaml").read_text())
    rows = []
    for name in NAMES:
        if name not in results:
            continue
        candidates = results[name]["candidates"]
        champion = next(family for family, c in candidates.items() if c["selected"])
        accuracy, target = candidates[champion]["test"], targets["accuracy"][name]
        best_network = max(c["test"] for f, c in candidates.items() if f not in ("baseline", "rocket", "ensemble"))
        rows += [
            {
                "figure": f"{name}: champion ({champion}) test accuracy",
                "value": f"{accuracy:.4f}",
                "target": f">= {target}",
                "met": accuracy >= target,
            },
            {
                "figure": f"{name}: best network test accuracy vs the baseline's",
                "value": f"{best_network:.4f} vs {candidates['baseline']['test']:.4f}",
                "target": ">=",
                "met": best_network >= candidates["baseline"]["test"],
            },
            *(
                [
                    {
                        "figure": f"{name}: champion test accuracy vs the published FCN/ResNet figure (issue 33)",
                        "value": f"{accuracy:.4f}",
                        "target": f">= {targets['published'][name]}",
                        "met": accuracy >= targets["published"][name],
                    }
                ]
                if name in targets["published"]
                else []
            ),
            {
                "figure": f"{name}: minutes for a default run of every candidate",
                "value": f"{results[name]['minutes']:.1f}",
                "target": f"<= {targets['minutes']}",
                "met": results[name]["minutes"] <= targets["minutes"],
            },
        ]
    return rows


def main(names: list[str]) -> None:
    previous = RESULTS / "quality.json"
    results = json.loads(previous.read_text()).get("runs", {}) if previous.exists() else {}
    title = "Quality: default runs on the shared data sets (issue 13)"
    for name in names:
        print(f"{name} ...", flush=True)
        results[name] = run_default(name)
        print(json.dumps(results[name]), flush=True)
        save("quality", title, target_rows(results), table(results), extra={"runs": results})


if __name__ == "__main__":
    main(sys.argv[1:] or list(NAMES))
