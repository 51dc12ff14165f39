import csv
import os
import shutil
import subprocess
from pathlib import Path
from typing import NoReturn

import pandas as pd
import pytest
import yaml

from tasks.infra.local_servers import free_port

# Set before Prefect, GX or DVC load: there is no network, and telemetry would only wait on it.
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["GX_ANALYTICS_ENABLED"] = "false"
os.environ["DVC_NO_ANALYTICS"] = "1"
# Each command-line run in a test starts its own Prefect API, gone when it ends: a project server
# would outlive the test's folder. tests/test_project_server.py turns the project's server on.
os.environ["MLPIPE_PREFECT_SERVER"] = "temporary"

SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def unavailable(what: str) -> NoReturn:
    """A system package a test drives for real (Chromium, PostgreSQL) is missing: a skip on a
    workstation, a failure in CI (CI=true, set by .ci/run, which installs them), where a skip
    would hide the tests that need it."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} (CI=true: missing here is a failure, not a skip)", pytrace=False)
    pytest.skip(what)


def make_workspace(root: Path) -> Path:
    """A fresh project root: a git + DVC repository whose MLflow store is its own, ignoring in git
    what the project ignores (outputs/, the MLflow store)."""
    import shutil
    import subprocess

    from dvc.repo import Repo

    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    shutil.copy(Path(__file__).parents[1] / ".gitignore", root / ".gitignore")
    Repo.init(str(root)).close()
    return root


def validate(frame, dataset: str, suite_path: Path, report_path: Path):
    """A table against one suite file alone (no row checks, no drift), its report written: the
    validation report a registration needs, made quickly."""
    from tasks.validation.expectations import load_suite, run_suite

    report = run_suite(frame, load_suite(suite_path), dataset)
    report.write(report_path)
    return report


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_workspace(tmp_path / "project")
    monkeypatch.setenv("MLPIPE_ROOT", str(root))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return root


@pytest.fixture(scope="session")
def shared_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One workspace for tests that only read what an expensive fixture made in it."""
    return make_workspace(tmp_path_factory.mktemp("shared") / "project")


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory):
    """A real `prefect server start` (API and UI) on a free loopback port and a temporary database,
    started once (~15 s). Flows in this process and `mlpipe` subprocesses both report to it."""
    from prefect_runs import talking_to

    from tasks.infra.local_servers import launch, prefect_server, stop
    from tasks.infra.prefect_private import drain_prefect_workers

    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    (process,) = launch([prefect_server(port, home)], home)
    try:
        url = f"http://127.0.0.1:{port}/api"
        with talking_to(url):
            yield url
            drain_prefect_workers()  # this process's flow runs still have logs on their way
    finally:
        stop([process])


@pytest.fixture(scope="session")
def digits(shared_workspace: Path):
    from tasks.data.loading import load
    from tasks.infra.settings import Settings

    return load("digits", Settings(root=shared_workspace))


@pytest.fixture(scope="session")
def digits_split(digits):
    from tasks.data.splitting import split

    return split(digits.frame["label"].to_numpy(), 0.2, 0.1, split_seed=0, seed=1)


@pytest.fixture(scope="session")
def trained_cnn(digits, digits_split, shared_workspace: Path):
    """A CNN trained for three epochs: enough to beat chance by far, quick on a CPU."""
    from tasks.training.network import train
    from tasks.types import TrainConfig

    config = TrainConfig(
        family="cnn",
        max_epochs=3,
        batch_size=64,
        patience=5,
        seed=1,
        optimiser={"learning_rate": 0.005},
        network={"channels": 16},
    )
    return train(digits, digits_split, config, shared_workspace / "outputs" / "cnn")


@pytest.fixture(scope="session")
def small_datasets(tmp_path_factory, digits):
    """A few hundred rows per modality: digits, ECG200 and a class-balanced slice of sms_spam."""
    from tasks.data.loading import load_spec

    folder = tmp_path_factory.mktemp("small")
    sms = pd.read_csv(SHARED_DATASETS / "sms_spam.tsv", sep="\t", quoting=csv.QUOTE_NONE)
    sms.groupby("Label").head(150).to_csv(folder / "sms.csv", index=False)
    specs = {
        "image": {
            "name": "digits_small",
            "modality": "image",
            "format": "parquet",
            "train": "digits.parquet",
            "image_shape": [1, 8, 8],
            "pixel_scale": 16,
        },
        "sequence": {
            "name": "ecg",
            "modality": "sequence",
            "format": "ucr",
            "train": str(SHARED_DATASETS / "ecg200_train.txt"),
        },
        "text": {
            "name": "sms",
            "modality": "text",
            "format": "csv",
            "train": "sms.csv",
            "label_column": "Label",
            "text_column": "SMS",
        },
    }
    digits.frame.head(300).to_parquet(folder / "digits.parquet", index=False)
    loaded = {}
    for modality, spec in specs.items():
        (folder / f"{modality}.yaml").write_text(yaml.safe_dump(spec))
        loaded[modality] = load_spec(folder / f"{modality}.yaml")
    return loaded


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server (Debian's package) on a free loopback port, for the session."""
    from engines import postgres_bin, postgres_server

    if not postgres_bin("initdb"):
        unavailable("PostgreSQL is not installed (.ci/run installs Debian's postgresql)")
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def s3_endpoint():
    """moto's S3 server, a real S3 API over HTTP, on a free loopback port (not 5000, MLflow's)."""
    from engines import s3_server

    with s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def object_storage(s3_endpoint, monkeypatch) -> str:
    """A new bucket on the S3 server, reached through the usual AWS variables, as MLPIPE_STORAGE_URL."""
    from engines import new_bucket, s3_environment

    for name, value in s3_environment(s3_endpoint).items():
        monkeypatch.setenv(name, value)
    url = f"s3://{new_bucket()}/team"
    monkeypatch.setenv("MLPIPE_STORAGE_URL", url)
    return url


LINEAGE = {"git_sha": "abc123", "git_dirty": "false", "prefect_flow_run_id": "none"}


@pytest.fixture(scope="session")
def weak_cnn(digits, digits_split, shared_workspace):
    """A CNN that has barely trained: clearly worse than trained_cnn on the same test rows."""
    from tasks.training.network import train
    from tasks.types import TrainConfig

    config = TrainConfig(
        family="cnn",
        max_epochs=1,
        batch_size=256,
        patience=1,
        seed=1,
        optimiser={"learning_rate": 3e-4},
        network={"channels": 2},
    )
    return train(digits, digits_split, config, shared_workspace / "outputs" / "weak")


@pytest.fixture(scope="session")
def registered(trained_cnn, weak_cnn, digits, digits_split, tmp_path_factory):
    """Register weak, strong, weak again (as if retrained): v1, v2, v3 in one store. Read only:
    a test that moves aliases or rewrites tags takes `own_registry`."""
    import dataclasses

    from tasks.evaluation.scoring import evaluate
    from tasks.evaluation.tasks import choose_candidate
    from tasks.infra.settings import CODE_ROOT, Settings
    from tasks.registry.tasks import register

    root = make_workspace(tmp_path_factory.mktemp("registry") / "project")
    settings = Settings(root=root)
    report_path = root / "validation.json"
    report = validate(digits.frame, "digits", CODE_ROOT / "expectations" / "digits.json", report_path)
    results = []
    # A retrain that ended up as weak: another training key, or the registry would reuse v1.
    weak_again = dataclasses.replace(weak_cnn, training_key="retrained")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLPIPE_ROOT", str(root))
        for model in (weak_cnn, trained_cnn, weak_again):
            evaluation = evaluate(model, digits, digits_split, root / "outputs" / model.family)
            choice = choose_candidate.fn([model], digits, digits_split)
            results.append(register(digits, digits_split, report, [(model, evaluation)], choice, LINEAGE, settings))
    return settings, results


@pytest.fixture
def own_registry(registered, tmp_path):
    """A copy of the registered project, for a test that moves aliases or rewrites tags: the
    others then see the registry as `registered` made it, whatever order they run in. (The copy's
    store still points at the original's artifacts, which nothing here writes.)"""
    from tasks.infra.settings import Settings

    settings, results = registered
    shutil.copytree(settings.root, tmp_path / "project", symlinks=True)
    return Settings(root=tmp_path / "project"), results


def run_mlpipe(settings, *args: str) -> subprocess.CompletedProcess:
    """`mlpipe ARGS` in its own process, on the project at settings.root."""
    import sys

    env = {**os.environ, "MLPIPE_ROOT": str(settings.root)}
    mlpipe = str(Path(sys.executable).with_name("mlpipe"))
    return subprocess.run([mlpipe, *args], capture_output=True, text=True, env=env, timeout=300)
