"""The promotion lock holds across machines: two challengers racing on one store (PostgreSQL
or SQLite) leave one consistent champion history, and a Prefect server's concurrency limit holds it."""

import json
import os
import pickle
import subprocess
import sys
import time

import mlflow
import pytest
import yaml
from engines import postgres_bin

from tasks.infra.errors import MlpipeError
from tasks.infra.settings import CODE_ROOT, Settings

SYNCHRONISED_CHALLENGER = """
import json, pickle, sys, time
from pathlib import Path
import tasks.registry.promotion_lock as locks
import tasks.registry.tasks as registry
from tasks.infra.settings import Settings

root, barrier, me, payload = sys.argv[1:]
real_lock = locks.promotion_lock

def synchronised(settings, name):
    # Both challengers reach the gate at the same moment, then race for the real lock.
    Path(barrier, me).touch()
    while len(list(Path(barrier).iterdir())) < 2:
        time.sleep(0.01)
    return real_lock(settings, name)

locks.promotion_lock = synchronised
with open(payload, "rb") as handle:
    dataset, split, report, candidates, choice, lineage = pickle.load(handle)
registration = registry.register(dataset, split, report, candidates, choice, lineage, Settings(root=Path(root)))
print(json.dumps({"version": registration.version, "promoted": registration.promoted}))
"""


# SQLite's file lock (the embedded store, one machine) runs in make test-slow: make test keeps the
# PostgreSQL lock, the one that must hold across machines.
@pytest.mark.parametrize("store_kind", ["postgresql", pytest.param("sqlite", marks=pytest.mark.slow)])
def test_two_machines_promoting_at_once_leave_one_consistent_history(
    store_kind, request, digits, digits_split, trained_cnn, tmp_path, monkeypatch
):
    """Two challengers, each better than the champion, in two project folders that share nothing
    but the store (two machines on PostgreSQL's advisory lock; two runs on one machine on the
    file lock beside the SQLite store) reach the gate together: one is crowned against the old
    champion, the other is judged against the new one."""
    import dataclasses

    from conftest import make_workspace, validate
    from sqlalchemy.engine import make_url

    from tasks.evaluation.scoring import evaluate
    from tasks.evaluation.tasks import choose_candidate
    from tasks.registry.aliases import champion_history
    from tasks.registry.tasks import register
    from tasks.training.network import train
    from tasks.types import TrainConfig

    if store_kind == "postgresql":
        server = make_url(request.getfixturevalue("postgres_url"))  # a database of its own on the module's server
        createdb = [postgres_bin("createdb"), "-h", server.host, "-p", str(server.port), "-U", server.username]
        subprocess.run([*createdb, "promotion"], check=True, capture_output=True)
        store = server.set(database="promotion").render_as_string(hide_password=False)
    else:
        store = f"sqlite:///{tmp_path / 'shared' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    lineage = {"git_sha": "abc123", "git_dirty": "false", "prefect_flow_run_id": "none"}
    roots = [make_workspace(tmp_path / name) for name in ("champion", "machine-a", "machine-b")]
    report = validate(digits.frame, "digits", CODE_ROOT / "expectations" / "digits.json", tmp_path / "report.json")

    def candidates(model, root):
        evaluation = evaluate(model, digits, digits_split, root / "outputs" / model.family)
        return [(model, evaluation)], choose_candidate.fn([model], digits, digits_split)

    weak_config = TrainConfig(family="cnn", max_epochs=1, batch_size=256, patience=1, seed=1, network={"channels": 2})
    weak = train(digits, digits_split, weak_config, roots[0] / "outputs" / "weak")
    monkeypatch.setenv("MLPIPE_ROOT", str(roots[0]))
    first = register(digits, digits_split, report, *candidates(weak, roots[0]), lineage, Settings(root=roots[0]))
    assert first.promoted and first.version == "1"

    barrier = tmp_path / "barrier"
    barrier.mkdir()
    processes = []
    for name, root in zip(("a", "b"), roots[1:], strict=True):
        model = dataclasses.replace(trained_cnn, training_key=f"challenger-{name}")  # two versions, not one reused
        payload = tmp_path / f"{name}.pickle"
        payload.write_bytes(pickle.dumps((digits, digits_split, report, *candidates(model, root), lineage)))
        env = {**os.environ, "MLPIPE_ROOT": str(root), "MLFLOW_TRACKING_URI": store}
        command = [sys.executable, "-c", SYNCHRONISED_CHALLENGER, str(root), str(barrier), name, str(payload)]
        processes.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outcomes = [process.communicate(timeout=600) for process in processes]
    assert [p.returncode for p in processes] == [0, 0], [err[-2000:] for _, err in outcomes]
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outcomes]

    client = mlflow.MlflowClient(store)
    crowned = [r["version"] for r in results if r["promoted"]]
    assert len(crowned) == 1, results  # the second is no better than the first: not promoted
    (other,) = [r["version"] for r in results if not r["promoted"]]
    assert champion_history(client, "digits") == ["1", crowned[0]]
    assert str(client.get_model_version_by_alias("digits", "champion").version) == crowned[0]
    # Each was judged against the champion of its moment: v1, then the one crowned before it.
    assert client.get_model_version("digits", crowned[0]).tags["promotion.champion_version"] == "1"
    assert client.get_model_version("digits", other).tags["promotion.champion_version"] == crowned[0]


HOLDER = """
import sys, time
from pathlib import Path
from tasks.registry.promotion_lock import promotion_lock
from tasks.infra.settings import Settings

root, held, release = sys.argv[1:]
with promotion_lock(Settings(root=Path(root)), "digits"):
    Path(held).touch()
    while not Path(release).exists():
        time.sleep(0.05)
"""


def test_a_prefect_global_concurrency_limit_holds_the_promotion_lock(prefect_api, tmp_path, monkeypatch):
    """With a Prefect server configured, the lock is a global concurrency limit on that server: while
    another process (any machine that reaches the server) holds it, the gate waits."""
    import time

    from tasks.infra.errors import MlpipeError
    from tasks.registry.promotion_lock import lock_kind, promotion_lock

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # a tracking server, never contacted
    settings = Settings(root=tmp_path)
    assert lock_kind(settings) == "prefect"
    held, release = tmp_path / "held", tmp_path / "release"
    env = {**os.environ, "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path), str(held), str(release)], env=env)
    try:
        deadline = time.monotonic() + 120
        while not held.exists():
            assert holder.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        held_too_long = r"the promotion lock of digits \(mlpipe-promotion-digits\) was held for more than 3 s"
        with pytest.raises(MlpipeError, match=held_too_long):
            with promotion_lock(settings, "digits", timeout=3):
                pass
    finally:
        release.touch()
        holder.wait(60)
    assert holder.returncode == 0
    started = time.monotonic()
    with promotion_lock(settings, "digits", timeout=60):
        waited = time.monotonic() - started
    assert waited < 30


def test_an_edited_concurrency_limit_is_refused_not_silently_unlocked(prefect_api):
    """A limit someone set to two slots, or turned off, would let two holders in: said in one line."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    from tasks.infra.errors import MlpipeError
    from tasks.infra.prefect_lock import prefect_lock

    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name="mlpipe-edited", limit=2))
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name="mlpipe-off", limit=1, active=False))

    for name, state in (("mlpipe-edited", "limit 2, active"), ("mlpipe-off", "limit 1, inactive")):
        with pytest.raises(MlpipeError, match=rf"limit {name} \({state}\) is no lock: it needs one active slot"):
            with prefect_lock(name, 5, "the test"):
                pass


LEASE_HOLDER = """
import sys, time
from pathlib import Path
from tasks.infra.prefect_lock import prefect_lock
with prefect_lock("mlpipe-restart", 30, "the test", lease_seconds=60):
    Path(sys.argv[1]).touch()
    time.sleep(600)  # killed first, with the server
"""


@pytest.mark.slow
def test_a_lease_lost_in_a_server_restart_frees_its_slot_when_it_ends(tmp_path):
    """The server keeps the slots' leases on disk: after a restart, the slot of a holder that died
    with it frees when its lease ends (60 s), not never."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from tasks.infra.local_servers import free_port, launch, prefect_server, stop
    from tasks.infra.prefect_lock import prefect_lock

    home, port, held = tmp_path / "prefect-home", free_port(), tmp_path / "held"
    url = f"http://127.0.0.1:{port}/api"
    (server,) = launch([prefect_server(port, home)], tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", LEASE_HOLDER, str(held)], env={**os.environ, "PREFECT_API_URL": url}
    )
    try:
        deadline = time.monotonic() + 120
        while not held.exists():
            assert holder.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        holder.kill()
        stop([server])
    (server,) = launch([prefect_server(port, home)], tmp_path)
    try:
        started = time.monotonic()
        with temporary_settings({PREFECT_API_URL: url}), prefect_lock("mlpipe-restart", 180, "the test"):
            waited = time.monotonic() - started
    finally:
        stop([server])
    assert waited < 120  # the 60 s lease, and the server's check every 15 s


def test_a_twin_fit_that_holds_the_folder_too_long_ends_the_wait_in_one_line(workspace, monkeypatch):
    """No identical fit trains longer than a candidate may (train.timeout_minutes): the wait ends there."""
    from types import SimpleNamespace

    from filelock import FileLock

    from tasks.training.fitting import _folder_lock

    params = yaml.safe_load((CODE_ROOT / "params.yaml").read_text())
    params["train"]["timeout_minutes"] = 0.02  # 1.2 s
    monkeypatch.setattr("tasks.training.fitting.TWIN_MARGIN_SECONDS", 0)
    (workspace / "params.yaml").write_text(yaml.safe_dump(params))
    job = SimpleNamespace(config=SimpleNamespace(family="cnn"), out_dir=workspace / "outputs" / "cnn")
    job.out_dir.mkdir(parents=True)
    with FileLock(job.out_dir.with_name(".cnn.lock")):  # the twin, still training
        with pytest.raises(MlpipeError, match=r"^another run has trained cnn in .* for more than 0.02 min \(params"):
            with _folder_lock(job):
                pass
