"""DVC versions data and models: `mlpipe data add`, data hashes in MLflow, a fresh clone that
pulls and reproduces an older version, `dvc repro` of the project, and DVC's lock."""

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from conftest import SHARED_DATASETS, make_workspace

from tasks.data.versioning import recorded_hash
from tasks.infra.settings import CODE_ROOT, Settings

BIN = Path(sys.executable).parent


def run(*args: str, cwd: Path, env: dict, timeout: int = 600) -> subprocess.CompletedProcess:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(args)}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


def git(*args: str, cwd: Path) -> None:
    identity = ["-c", "user.name=mlpipe tests", "-c", "user.email=tests@mlpipe.invalid"]
    subprocess.run(["git", *identity, *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def env(prefect_api, tmp_path) -> dict:
    """mlpipe and dvc from this environment; a DVC remote of the test's own."""
    environment = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    environment["MLPIPE_DVC_REMOTE"] = str(tmp_path / "remote")
    for name in ("MLPIPE_ROOT", "MLFLOW_TRACKING_URI"):
        environment.pop(name, None)
    return environment


def _sms(rows_per_class: dict[str, int], path: Path) -> Path:
    sms = pd.read_csv(SHARED_DATASETS / "sms_spam.tsv", sep="\t", quoting=csv.QUOTE_NONE)
    parts = [sms[sms["Label"] == label].head(count) for label, count in rows_per_class.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.concat(parts).to_csv(path, sep="\t", index=False, quoting=csv.QUOTE_NONE, escapechar="\\")
    return path


def test_data_versions_reach_mlflow_and_an_older_one_reproduces_in_a_fresh_clone(env, tmp_path):
    root = make_workspace(tmp_path / "project")
    add = ["data", "add", "--name", "sms", "--modality", "text", "--label-column", "Label", "--text-column", "SMS"]
    train = ["run", "--dataset", "sms", "--models", "cnn", "--max-epochs", "2", "--seed", "3"]

    first = run("mlpipe", *add, str(_sms({"ham": 240, "spam": 60}, tmp_path / "v1" / "sms.tsv")), cwd=root, env=env)
    assert "sms: version " in first.stdout and "(300 rows)" in first.stdout
    assert "git add data/sms.dvc data/sms.yaml data/.gitignore" in first.stdout
    git("add", "-A", cwd=root)
    git("commit", "-qm", "sms v1", cwd=root)
    run("mlpipe", *train, cwd=root, env=env)

    second = run("mlpipe", *add, str(_sms({"ham": 300, "spam": 75}, tmp_path / "v2" / "sms.tsv")), cwd=root, env=env)
    assert "(375 rows), replacing " in second.stdout
    git("add", "-A", cwd=root)
    git("commit", "-qm", "sms v2", cwd=root)
    run("mlpipe", *train, cwd=root, env=env)

    client = mlflow.MlflowClient(Settings(root=root).tracking_uri)
    hashes = {v.version: v.tags["data_hash"] for v in client.search_model_versions("name='sms'")}
    assert set(hashes) == {1, 2} and hashes[1] != hashes[2]
    assert hashes[2] == recorded_hash(root / "data" / "sms.dvc")

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(root), str(clone)], check=True)
    assert not (clone / "data" / "sms").exists()
    pulled = run("mlpipe", "data", "pull", cwd=clone, env=env)
    assert f"Pulled from {tmp_path / 'remote'}" in pulled.stdout
    assert len(pd.read_csv(clone / "data" / "sms" / "train" / "sms.tsv", sep="\t", quoting=csv.QUOTE_NONE)) == 375
    run("dvc", "pull", cwd=clone, env=env)  # the remote is configured now, for DVC's own commands too

    # The registry is shared (one MLflow store); the data of v1 comes back by its hash alone.
    shared = {**env, "MLFLOW_TRACKING_URI": Settings(root=root).tracking_uri}
    reproduced = run("mlpipe", "reproduce", "--dataset", "sms", "--version", "1", cwd=clone, env=shared)
    assert f"retrained from data {hashes[1][:12]}" in reproduced.stdout
    assert "Reproduced within 0.005." in reproduced.stdout
    rows = {line.split()[0]: line.split()[1:] for line in reproduced.stdout.splitlines() if line.startswith("test/")}
    assert set(rows) == {"test/accuracy", "test/f1_macro"}
    assert all(abs(float(difference)) <= 0.005 for _, _, difference in rows.values())

    # Again, over a broken checkpoint left in its folder: a reproduction trains anew, never resumes.
    leftover = clone / "outputs" / "sms" / "reproduce-v1" / "training" / "cnn" / "last.ckpt"
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.write_bytes(b"not a checkpoint")
    again = run("mlpipe", "reproduce", "--dataset", "sms", "--version", "1", cwd=clone, env=shared)
    assert "Reproduced within 0.005." in again.stdout


def test_data_add_keeps_a_train_and_a_test_file_of_the_same_name_apart(env, tmp_path):
    root = make_workspace(tmp_path / "project")
    for part in ("train", "test"):
        (tmp_path / part).mkdir()
        shutil.copy(SHARED_DATASETS / f"ecg200_{part}.txt", tmp_path / part / "ecg.txt")
    test_file = str(tmp_path / "test" / "ecg.txt")
    add = ["data", "add", str(tmp_path / "train" / "ecg.txt"), "--name", "ecg", "--modality", "sequence"]
    run("mlpipe", *add, "--format", "ucr", "--test", test_file, cwd=root, env=env)

    spec = yaml.safe_load((root / "data" / "ecg.yaml").read_text())
    assert (spec["train"], spec["test"]) == ("ecg/train/ecg.txt", "ecg/test/ecg.txt")
    for part in ("train", "test"):
        copied = (root / "data" / spec[part]).read_text()
        assert copied == (SHARED_DATASETS / f"ecg200_{part}.txt").read_text()


def _copy_of_the_project(folder: Path) -> Path:
    """What a fresh clone of mlpipe holds: its tracked (and new, unignored) files, committed."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=CODE_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for relative in listed:
        if (CODE_ROOT / relative).is_file():
            (folder / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(CODE_ROOT / relative, folder / relative)
    params = yaml.safe_load((folder / "params.yaml").read_text())
    params["datasets"] = {"digits": {"modality": "image", "models": "cnn", "backbone": "", "init_from": ""}}
    params["train"]["max_epochs"] = 1
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    subprocess.run(["git", "init", "-q"], cwd=folder, check=True)
    git("add", "-A", cwd=folder)
    git("commit", "-qm", "a fresh clone", cwd=folder)
    return folder


# Two whole `dvc repro` runs in a fresh clone (~70 s): in `make test-slow`, to keep `make test` under 25 minutes.
@pytest.mark.slow
def test_dvc_repro_on_a_fresh_clone_then_skips_everything(env, tmp_path):
    project = _copy_of_the_project(tmp_path / "mlpipe")

    run("dvc", "repro", cwd=project, env=env)

    out = project / "outputs" / "pipeline" / "digits"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["registered_version"] == 1 and 0 < metrics["test_accuracy"] <= 1
    assert (out / "model" / "MLmodel").exists() and (out / "learning_curves" / "cnn.csv").exists()
    assert "train@digits" in yaml.safe_load((project / "dvc.lock").read_text())["stages"]

    again = run("dvc", "repro", cwd=project, env=env)
    assert "Stage 'train@digits' didn't change, skipping" in again.stdout
    assert "Data and pipelines are up to date." in again.stdout
    spec = project / "data" / "digits.yaml"
    spec.write_text(spec.read_text().replace("pixel_scale: 16.0", "pixel_scale: 8.0"))
    assert "train@digits" in run("dvc", "status", cwd=project, env=env).stdout, "the spec is a dependency"
    git("checkout", "data/digits.yaml", cwd=project)

    shown = run("dvc", "metrics", "show", "--json", cwd=project, env=env)
    assert "test_accuracy" in shown.stdout
    run("dvc", "plots", "show", "--out", str(tmp_path / "plots"), cwd=project, env=env)
    assert (tmp_path / "plots" / "index.html").exists()

    experiment = run("dvc", "exp", "run", "-S", "train.max_epochs=2", cwd=project, env=env)
    assert "Ran experiment(s)" in experiment.stdout
    run("dvc", "push", cwd=project, env=env)
    assert any((tmp_path / "remote").rglob("*")), "the model went to the remote"


def test_a_run_waits_for_a_dvc_lock_held_by_another_process(env, workspace):
    import queue
    import threading

    from dvc.repo import Repo

    env = {**env, "MLPIPE_ROOT": str(workspace)}
    lines: queue.Queue[str] = queue.Queue()
    with Repo(str(workspace)).lock:  # as a `dvc` command in another terminal holds it
        started = subprocess.Popen(
            [str(BIN / "mlpipe"), "run", "--models", "cnn", "--max-epochs", "1"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=lambda: [lines.put(line) for line in started.stderr], daemon=True).start()
        seen: list[str] = []
        deadline = time.monotonic() + 180
        while not any("Retry 1/4" in line for line in seen):  # the run found the lock held, and waits
            assert started.poll() is None and time.monotonic() < deadline, "".join(seen)[-2000:]
            try:
                seen.append(lines.get(timeout=1))
            except queue.Empty:
                continue
    out = started.stdout.read()  # stderr is the reader thread's
    started.wait(timeout=300)

    assert started.returncode == 0, "".join(seen)[-2000:]
    assert any("DVC's lock in" in line and "is held by another process" in line for line in seen)
    assert "Registered model 'digits' version 1" in out


def _pushed_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace with one data set, data/rows, tracked by DVC and pushed to the test's remote."""
    from tasks.data.versioning import push

    monkeypatch.setenv("MLPIPE_DVC_REMOTE", str(tmp_path / "remote"))
    root = make_workspace(tmp_path / "project")
    (root / "data" / "rows").mkdir(parents=True)
    (root / "data" / "rows" / "train.csv").write_text("x,label\n1,a\n")
    run(str(BIN / "dvc"), "add", "-q", "data/rows", cwd=root, env={**os.environ})
    push(root)
    return root


def test_a_file_changed_on_the_remote_is_refused_not_checked_out(tmp_path, monkeypatch):
    """Whoever can write the shared remote cannot swap a data version's content: DVC hashes what it pulls."""
    from tasks.data.versioning import pull
    from tasks.infra.errors import MlpipeError

    root = _pushed_rows(tmp_path, monkeypatch)
    (stored,) = [p for p in (tmp_path / "remote").rglob("*") if p.is_file() and not p.name.endswith(".dir")]
    stored.chmod(0o644)
    stored.write_text("x,label\n1,forged\n")
    shutil.rmtree(root / "data" / "rows")
    shutil.rmtree(root / ".dvc" / "cache")
    with pytest.raises(MlpipeError, match=r"^dvc pull in .* failed: Checkout failed for following targets"):
        pull(root)
    assert not (root / "data" / "rows" / "train.csv").exists()


def test_data_pull_in_a_fresh_clone_brings_the_data_sets_back_and_names_the_stage_outputs_it_lacks(
    tmp_path, monkeypatch
):
    """A clone's remote holds the data sets pushed to it, not what a stage of dvc.yaml made elsewhere
    (the built-in data, a model of `dvc repro`): those are named, made again by a run."""
    from tasks.data.versioning import pull

    root = _pushed_rows(tmp_path, monkeypatch)
    (root / "dvc.yaml").write_text("stages:\n  made:\n    cmd: echo made > made.txt\n    outs: [made.txt]\n")
    run(str(BIN / "dvc"), "repro", "-q", cwd=root, env={**os.environ})  # made.txt is in no remote
    git("add", "-A", cwd=root)
    git("commit", "-qm", "data and a stage", cwd=root)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(root), str(clone)], check=True)

    assert pull(clone) == ["made.txt"]
    assert (clone / "data" / "rows" / "train.csv").read_text() == "x,label\n1,a\n"
