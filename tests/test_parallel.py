"""`mlpipe run --parallel`: the candidates as Prefect tasks on a real local Dask cluster (prefect-dask)."""

import mlflow
import pytest

from tasks.infra.errors import MlpipeError
from tasks.infra.params import ParallelParams
from tasks.infra.settings import Settings


def _candidates(registration, settings: Settings) -> dict:
    client = mlflow.MlflowClient(settings.tracking_uri)
    figures = {}
    for family, run_id in registration.candidate_run_ids.items():
        metrics = client.get_run(run_id).data.metrics
        figures[family] = {k: v for k, v in metrics.items() if k.startswith(("val/", "test/"))}
    return figures


# Two whole runs and a Dask cluster (~60 s): in `make test-slow`, to keep `make test` under 25 minutes.
@pytest.mark.slow
def test_parallel_candidates_give_the_results_of_a_sequential_run(prefect_api, workspace, tmp_path, monkeypatch):
    from conftest import make_workspace

    from flows.training import training_pipeline

    run = {"dataset": "digits", "models": ["cnn", "rnn"], "max_epochs": 1, "seed": 5}
    sequential = training_pipeline(**run)
    expected = _candidates(sequential, Settings(root=workspace))

    other = make_workspace(tmp_path / "parallel")  # its own cache: every candidate trains again
    monkeypatch.setenv("MLPIPE_ROOT", str(other))
    parallel = training_pipeline(**run, parallel=True)

    assert set(expected) == {"cnn", "rnn", "baseline"}
    assert _candidates(parallel, Settings(root=other)) == expected  # same seeds, same figures
    assert parallel.best_family == sequential.best_family
    # The candidates were task runs of the flow run, and ran at once: on two worker processes.
    parent = mlflow.MlflowClient(Settings(root=other).tracking_uri).get_run(parallel.parent_run_id)
    runs = _task_runs(parent.data.tags["prefect_flow_run_id"], "train_model")
    assert len(runs) == 2 and all(r.state.is_completed() for r in runs)
    first, second = sorted(runs, key=lambda r: r.start_time)
    assert second.start_time < first.end_time


def _task_runs(flow_run_id: str, task_name: str) -> list:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect_runs import prefect_client

    with prefect_client() as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return [r for r in runs if r.task_key.startswith(task_name) or r.name.startswith(task_name)]


def test_an_unreachable_dask_scheduler_is_one_line():
    from tasks.training.parallel import CandidateCall, run_all

    with pytest.raises(MlpipeError, match=r"Dask scheduler tcp://127.0.0.1:9 .*parallel.address"):
        run_all([CandidateCall(print, {})], ParallelParams(enabled=True, address="tcp://127.0.0.1:9"))
