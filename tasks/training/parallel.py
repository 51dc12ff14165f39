"""Candidates trained at once, each a Prefect task on a Dask cluster (prefect-dask's DaskTaskRunner):
a temporary local cluster of worker processes, or a running cluster by its scheduler's address.
Each task runs as it would in the run's own process: the same seed, cache key, result storage and
torch threads (a CPU kernel's sums depend on how many threads split them), so the results are the
ones a sequential run gets."""

import logging
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

from tasks.infra.errors import MlpipeError
from tasks.infra.params import ParallelParams

CONNECT_SECONDS = 10  # to a running scheduler: distributed's own default waits 30 s


def scheduler_address(parallel: ParallelParams) -> str | None:
    """params.yaml's address, else Dask's own setting (DASK_SCHEDULER_ADDRESS, ~/.config/dask)."""
    import dask

    return parallel.address or dask.config.get("scheduler-address", None)


@contextmanager
def dask_runner(parallel: ParallelParams, tasks: int):
    """A started DaskTaskRunner; a local cluster has no more workers than there are tasks."""
    from prefect_dask import DaskTaskRunner

    logging.getLogger("distributed").setLevel(logging.WARNING)  # a line per worker and nanny otherwise
    address = scheduler_address(parallel)
    if address:
        runner = DaskTaskRunner(address=address, client_kwargs={"timeout": CONNECT_SECONDS})
    else:
        # One task at a time per worker process; its torch threads are the run's (train_model's `threads`).
        workers = max(1, min(parallel.workers, tasks))
        cluster = {"n_workers": workers, "threads_per_worker": 1, "processes": True, "dashboard_address": None}
        runner = DaskTaskRunner(cluster_kwargs=cluster)
    with runner:
        try:
            runner.client  # noqa: B018 - connects (or starts the local cluster) now, not at the first submit
        except OSError as error:  # distributed's connection timeout is an OSError
            raise MlpipeError(
                f"Dask scheduler {address} is out of reach ({' '.join(str(error).split())[:200]}); "
                "check params.yaml's parallel.address or DASK_SCHEDULER_ADDRESS"
            ) from None
        yield runner


def torch_threads() -> int:
    """This process's torch threads: what each candidate trains with, here or on a Dask worker."""
    import torch

    return torch.get_num_threads()


@dataclass(frozen=True)
class CandidateCall:
    """One candidate to train: the Prefect task that trains it and the task's parameters."""

    task: Callable
    kwargs: dict


def run_all(calls: list[CandidateCall], parallel: ParallelParams | None) -> list:
    """Each call's task run: in this process one after the other, or all submitted to a Dask
    cluster at once. Results in the order given; the first failure raises, as it would sequentially."""
    if parallel is None:
        return [call.task(**call.kwargs) for call in calls]
    with dask_runner(parallel, len(calls)) as runner:
        futures = [runner.submit(call.task, call.kwargs) for call in calls]
        return [future.result() for future in futures]
