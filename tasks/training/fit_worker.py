"""A fit on several devices (or with DDP), in a worker process group of its own.

Lightning starts one process per device by re-running the command that started it. Re-running
`mlpipe` (or a Prefect worker) would start a second pipeline, so such a fit runs in a dedicated
worker, `python -m tasks.training.fit_worker JOB`, which Lightning may re-run safely. Workers never
touch MLflow or Prefect: the pipeline process reads rank zero's checkpoint and history and logs
them once.
"""

import json
import pickle
import subprocess
import sys
from pathlib import Path

from tasks.infra.errors import MlpipeError
from tasks.infra.files import read_json, write_atomic
from tasks.infra.process_groups import stop_process_trees
from tasks.infra.retrying import TransientError
from tasks.training.trainer import FitJob, FitResult, run_trainer


def fit_in_worker(job: FitJob) -> FitResult:
    job.out_dir.mkdir(parents=True, exist_ok=True)
    job_path, result_path, log_path = (job.out_dir / name for name in ("job.pkl", "result.json", "workers.log"))
    job_path.write_bytes(pickle.dumps(job))
    result_path.unlink(missing_ok=True)
    with log_path.open("w") as log:
        # A group of its own: Lightning starts the other ranks from it, and they all stop with it.
        worker = subprocess.Popen(
            [sys.executable, "-m", "tasks.training.fit_worker", str(job_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            worker.wait()
        except BaseException:  # Ctrl-C, SIGTERM, a task timeout: no rank may train on alone
            stop_process_trees([worker.pid], grace=10)
            worker.wait()
            raise
    if worker.returncode != 0 or not result_path.exists():
        lines = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
        last = lines[-1] if lines else "no output"
        # A worker killed by a signal may well finish when tried again (from last.ckpt).
        error = TransientError if worker.returncode < 0 else MlpipeError
        config = job.config
        raise error(
            f"training {config.family} on {config.devices} devices ({config.strategy}) failed with exit code "
            f"{worker.returncode}: {last} (log: {log_path})"
        )
    return FitResult(**read_json(result_path))


def _worker_main(job_path: Path) -> None:
    """One rank of a multi-device fit; rank zero reports the result for the pipeline process."""
    job: FitJob = pickle.loads(job_path.read_bytes())
    result, rank_zero = run_trainer(job)
    if rank_zero:
        write_atomic(job.out_dir / "result.json", json.dumps(result.__dict__))


if __name__ == "__main__":
    _worker_main(Path(sys.argv[1]))
