"""Issue 34's honest figure: spoken digits from a voice the model never heard. Leave one speaker
out: a default `mlpipe run` trains on every recording of four of fsdd's five speakers (its own
train and test files together) and is judged on all recordings of the fifth, each in turn, in a
fresh project with the embedded stores. The official split's figures are bench/quality.py's.

    python audio.py                  # the five speakers (about 5 default runs)
    python audio.py george lucas     # some of them; the others keep their last figures

Writes bench/results/audio.json: per held-out speaker, validation and test accuracy per candidate.
"""

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml
from pipeline_cost import environment, fresh_project

from common import RESULTS, ROOT, save

FSDD = ROOT.parent / "shared" / "datasets" / "fsdd"
MLPIPE = str(Path(sys.executable).with_name("mlpipe"))
NETWORKS = ("cnn", "rnn", "transformer")


def held_out(speaker: str) -> dict:
    """A default run on the other four speakers, tested on `speaker`'s recordings."""
    root = fresh_project()
    rows = pd.concat([pd.read_csv(FSDD / f"fsdd_{part}.csv") for part in ("train", "test")], ignore_index=True)
    shutil.copytree(FSDD / "recordings", root / "recordings")  # a manifest's files lie under its folder
    rows[rows["speaker"] != speaker].to_csv(root / "others.csv", index=False)
    rows[rows["speaker"] == speaker].to_csv(root / "held_out.csv", index=False)
    spec = {"name": f"fsdd-without-{speaker}", "modality": "audio", "format": "csv", "train": "others.csv",
            "test": "held_out.csv", "path_column": "file", "label_column": "digit"}  # fmt: skip
    (root / "spec.yaml").write_text(yaml.safe_dump(spec))
    started = time.perf_counter()
    done = subprocess.run([MLPIPE, "run", "--dataset", str(root / "spec.yaml")], env=environment(root),
                          capture_output=True, text=True, check=False)  # fmt: skip
    minutes = (time.perf_counter() - started) / 60
    if done.returncode != 0:
        raise SystemExit(f"held-out {speaker}: {done.stderr.strip().splitlines()[-1:]}")
    compare = [MLPIPE, "compare", "--dataset", str(root / "spec.yaml"), "--format", "json"]
    listed = subprocess.run(compare, env=environment(root), capture_output=True, text=True, check=True).stdout
    candidates = {r["family"]: {"val": r["val_accuracy"], "test": r["test_accuracy"], "selected": r["selected"]}
                  for r in json.loads(listed)}  # fmt: skip
    shutil.rmtree(root, ignore_errors=True)
    return {
        "minutes": round(minutes, 2),
        "test_rows": int((rows["speaker"] == speaker).sum()),
        "candidates": candidates,
    }


def write(results: dict) -> None:
    rows, lines = [], ["Validation / test accuracy per candidate (**bold**: chosen on validation).", ""]
    families = ("baseline", *NETWORKS, "ensemble")
    lines += [f"| held-out speaker | {' | '.join(families)} | minutes |", "|---|" + "---|" * (len(families) + 1)]
    for speaker, result in results.items():
        candidates = result["candidates"]
        cells = []
        for family in families:
            c = candidates.get(family)
            cell = "-" if c is None else f"{c['val']:.3f} / {c['test']:.3f}"
            cells.append(f"**{cell}**" if c and c["selected"] else cell)
        lines.append(f"| {speaker} | {' | '.join(cells)} | {result['minutes']:.1f} |")
        chosen = next(f for f, c in candidates.items() if c["selected"])
        best = max(NETWORKS, key=lambda f: candidates[f]["test"] if f in candidates else -1)
        rows.append({"figure": f"{speaker} held out: champion ({chosen}) test accuracy",
                     "value": f"{candidates[chosen]['test']:.4f}", "target": "", "met": None})  # fmt: skip
        rows.append({"figure": f"{speaker} held out: best network ({best}) vs the baseline",
                     "value": f"{candidates[best]['test']:.4f} vs {candidates['baseline']['test']:.4f}",
                     "target": ">=", "met": candidates[best]["test"] >= candidates["baseline"]["test"]})  # fmt: skip
    mean = sum(r["candidates"][next(f for f, c in r["candidates"].items() if c["selected"])]["test"]
               for r in results.values()) / len(results)  # fmt: skip
    rows.append({"figure": f"mean champion test accuracy over {len(results)} held-out speakers",
                 "value": f"{mean:.4f}", "target": "", "met": None})  # fmt: skip
    save("audio", "Spoken digits, leave one speaker out (issue 34)", rows, "\n".join(lines), {"runs": results})


def main(speakers: list[str]) -> None:
    previous = RESULTS / "audio.json"
    results = json.loads(previous.read_text()).get("runs", {}) if previous.exists() else {}
    for speaker in speakers:
        print(f"{speaker} held out ...", flush=True)
        results[speaker] = held_out(speaker)
        print(json.dumps(results[speaker]), flush=True)
        write(results)


if __name__ == "__main__":
    everyone = sorted(pd.read_csv(FSDD / "fsdd_train.csv")["speaker"].unique())
    main(sys.argv[1:] or everyone)
