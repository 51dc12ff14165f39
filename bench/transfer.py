"""Issue 32's figures: pretraining on the shared text sets' own unlabelled texts, then fine-tuning
that encoder beside the from-scratch families, and carrying a network from one movie-review set
to the other, as a user runs them in a fresh project with the embedded stores.

1. `mlpipe pretrain --dataset subj --texts trec.txt --texts sst2.txt`: subj's training and
   validation texts (never its test rows) and the texts of trec's and sst2's training files (never
   their test files), masked-language modelling with params.yaml's `pretraining` settings.
2. `mlpipe run --models cnn,rnn,transformer,pretrained --backbone models:/subj-encoder/1` on trec,
   subj and sst2: validation accuracy (what chose) and test accuracy (what judges) per candidate.
3. `mlpipe run --models cnn --init-from models:/subj@champion` on sst2 (subj's champion must be a
   cnn or an ensemble with one), beside sst2's cnn from scratch.
Targets (Kim 2014's CNN figures), reached by the candidate validation chooses: trec 0.912,
subj 0.914, sst2 0.827. Wall time and peak memory (PSS of the process tree) of every command.

    python transfer.py                    # everything (hours on 2 cores)
    PRETRAIN_EPOCHS=3 PRETRAIN_MINUTES=25 FINETUNE_EPOCHS=3 python transfer.py  # shorter: --max-epochs,
                                          # --timeout-minutes of pretraining, and the pretrained family's epochs
    PRETRAINING='{"hidden": 128, "layers": 2}' python transfer.py  # other params.yaml `pretraining` settings
    FAMILIES=cnn SETS=subj,sst2 python transfer.py  # --init-from alone: no pretraining, no pretrained family
                                          # (its figures go to bench/results/transfer_init_from.json)
Each step's figures are saved as it ends, so a cut-short run keeps what it measured.
"""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import yaml
from pipeline_cost import environment, fresh_project
from quality import DATASETS

from common import ROOT, sample_peak_memory, save

MLPIPE = str(Path(sys.executable).with_name("mlpipe"))
SHARED = ROOT.parent / "shared" / "datasets"
TARGETS = {"trec": 0.912, "subj": 0.914, "sst2": 0.827}
FAMILIES = os.environ.get("FAMILIES", "cnn,rnn,transformer,pretrained")
SETS = os.environ.get("SETS", "subj,sst2,trec").split(",")  # subj before sst2: sst2 starts from subj's champion
BOUNDS = {"PRETRAIN_EPOCHS": "--max-epochs", "PRETRAIN_MINUTES": "--timeout-minutes"}


def command(root: Path, *args: str) -> tuple[str, float, float]:
    """`mlpipe ARGS`: its output, wall minutes and peak memory in GiB."""
    started, peak = time.perf_counter(), [0]
    process = subprocess.Popen([MLPIPE, *args], env=environment(root), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sampler = threading.Thread(target=sample_peak_memory, args=(process, peak), daemon=True)
    sampler.start()
    out, err = process.communicate()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"mlpipe {' '.join(args)} failed: {err.decode().strip().splitlines()[-3:]}")
    return out.decode(), round((time.perf_counter() - started) / 60, 2), round(peak[0] / 2**30, 2)


def training_texts(folder: Path) -> list[str]:
    """The texts of trec's and sst2's training files, one a line (their test files stay out)."""
    paths = []
    for name in ("trec", "sst2"):
        texts = pd.read_csv(SHARED / f"{name}_train.csv")["text"].astype(str).str.replace("\n", " ")
        paths.append(folder / f"{name}.txt")
        paths[-1].write_text("\n".join(texts) + "\n")
    return [str(p) for p in paths]


def board(root: Path, name: str) -> dict:
    rows = json.loads(command(root, "compare", "--dataset", str(DATASETS / f"{name}.yaml"), "--format", "json")[0])
    return {
        f"{row['family']}@{row['init']}": {
            "val": row["val_accuracy"],
            "test": row["test_accuracy"],
            "selected": row["selected"],
        }
        for row in rows
    }


def main() -> None:
    root = fresh_project()
    if "PRETRAINING" in os.environ:  # the project's params.yaml: mlpipe's, with these pretraining settings
        params = yaml.safe_load((ROOT / "params.yaml").read_text())
        params["pretraining"] |= json.loads(os.environ["PRETRAINING"])
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    results, backbone = {}, []
    if "pretrained" in FAMILIES.split(","):
        results["pretrain"] = pretrain(root)
        backbone = ["--backbone", results["pretrain"]["backbone"]]
    for name in SETS:
        write_params(root, name, os.environ.get("FINETUNE_EPOCHS"))
        spec = str(DATASETS / f"{name}.yaml")
        _, minutes, memory = command(root, "run", "--dataset", spec, "--models", FAMILIES, *backbone)
        results[name] = {"minutes": minutes, "peak_gib": memory, "candidates": board(root, name)}
        print(name, json.dumps(results[name]), flush=True)
        write(results)
        if name == "sst2" and "subj" in results:
            transfer_between_sentiment_sets(root, results)


def pretrain(root: Path) -> dict:
    """`mlpipe pretrain` on subj's training and validation texts and trec's and sst2's training files."""
    texts = [arg for path in training_texts(root) for arg in ("--texts", path)]
    bounds = [(flag, os.environ[name]) for name, flag in BOUNDS.items() if name in os.environ]
    options = [item for pair in bounds for item in pair]
    out, minutes, memory = command(root, "pretrain", "--dataset", str(DATASETS / "subj.yaml"), *texts, *options)
    print(out, flush=True)
    backbone = next(line.split()[-1] for line in out.splitlines() if line.startswith("Backbone:"))
    return {"minutes": minutes, "peak_gib": memory, "backbone": backbone, "output": out[-1500:]}


def transfer_between_sentiment_sets(root: Path, results: dict) -> None:
    """sst2's cnn started from subj's champion, beside the sst2 cnn from scratch that came before."""
    spec = str(DATASETS / "sst2.yaml")
    _, minutes, memory = command(
        root, "run", "--dataset", spec, "--models", "cnn", "--init-from", "models:/subj@champion"
    )
    results["sst2-from-subj"] = {"minutes": minutes, "peak_gib": memory, "candidates": board(root, "sst2")}
    print("sst2-from-subj", json.dumps(results["sst2-from-subj"]), flush=True)
    write(results)


def write_params(root: Path, name: str, finetune_epochs: str | None) -> None:
    """mlpipe's params.yaml with the validation limits the data set needs (bench/datasets/targets.yaml)
    and, if given, the pretrained family's epochs."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["validation"]["checks"] |= (
        yaml.safe_load((DATASETS / "targets.yaml").read_text()).get("checks", {}).get(name, {})
    )
    if finetune_epochs:
        params["families"]["text"]["pretrained"]["max_epochs"] = int(finetune_epochs)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def write(results: dict) -> None:
    rows = []
    for name, target in TARGETS.items():
        if name not in results:
            continue
        chosen = next((k, v) for k, v in results[name]["candidates"].items() if v["selected"])
        reached = chosen[1]["test"]
        rows.append(
            {
                "figure": f"{name}: test accuracy of the candidate validation chose ({chosen[0]})",
                "value": round(reached, 4),
                "target": f">= {target}",
                "met": reached >= target,
            }
        )
    if "sst2-from-subj" in results:
        cnns = {k: v for k, v in results["sst2-from-subj"]["candidates"].items() if k.startswith("cnn@")}
        scratch = cnns.pop("cnn@scratch")
        for label, carried in cnns.items():
            value = f"{carried['val']:.4f} ({carried['test']:.4f}) vs {scratch['val']:.4f} ({scratch['test']:.4f})"
            figure = f"sst2 {label} against cnn@scratch: validation (test)"
            rows.append({"figure": figure, "value": value, "target": "higher", "met": carried["val"] > scratch["val"]})
    if "pretrain" in results:
        pretrain = results["pretrain"]
        for figure, key in (("pretraining wall time (min)", "minutes"), ("pretraining peak memory (GiB)", "peak_gib")):
            rows.append({"figure": figure, "value": pretrain[key], "target": "", "met": None})
        save("transfer", "Transfer learning: pretraining, fine-tuning and --init-from (issue 32)", rows, table(results),
             extra={"runs": results})  # fmt: skip
    else:
        save("transfer_init_from", f"Transfer learning: {FAMILIES} from scratch and --init-from (issue 32)", rows,
             table(results), extra={"runs": results})  # fmt: skip


def table(results: dict) -> str:
    lines = ["Validation / test accuracy per candidate (family@init; **bold**: chosen on validation).", ""]
    lines += ["| run | candidate | val | test | minutes | peak GiB |", "|---|---|---|---|---|---|"]
    for run, result in results.items():
        if run == "pretrain":
            continue
        for candidate, figures in result["candidates"].items():
            mark = "**" if figures["selected"] else ""
            cells = [f"{mark}{figures[k]:.4f}{mark}" if figures[k] is not None else "-" for k in ("val", "test")]
            lines.append(f"| {run} | {candidate} | {' | '.join(cells)} | {result['minutes']} | {result['peak_gib']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
