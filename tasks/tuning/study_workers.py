"""K processes sharing one study on this machine: `python -m tasks.tuning.study_workers JOB INDEX`.
Each samples with its own seed and trains on its share of the cores; the study's storage is
what they share, as workers on other machines would."""

import os
import pickle
import subprocess
import sys
from pathlib import Path

from tasks.infra.errors import MlpipeError
from tasks.infra.process_groups import stop_process_trees
from tasks.tuning.study import TuneJob
from tasks.tuning.trial import run_study


def run_workers(job: TuneJob, workers: int, folder: Path) -> None:
    """The study's trials in this process (one worker), or in `workers` processes at once."""
    if workers == 1:
        run_study(job)
        return
    folder.mkdir(parents=True, exist_ok=True)
    job.threads = max(1, (os.cpu_count() or 1) // workers)  # no more threads than cores, together
    job_path = folder / "tune-job.pkl"
    job_path.write_bytes(pickle.dumps(job))
    logs = [folder / f"worker-{index}.log" for index in range(workers)]
    processes = []
    try:
        for index, log in enumerate(logs):
            with log.open("w") as out:
                command = [sys.executable, "-m", "tasks.tuning.study_workers", str(job_path), str(index)]
                processes.append(subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT))
        codes = [process.wait() for process in processes]
    finally:  # Ctrl-C, a task timeout: no worker tunes on alone
        stop_process_trees([process.pid for process in processes if process.poll() is None], grace=30)
        job_path.unlink(missing_ok=True)
    failed = [(index, code) for index, code in enumerate(codes) if code != 0]
    if failed:
        index, code = failed[0]
        lines = [line for line in logs[index].read_text(errors="replace").splitlines() if line.strip()]
        raise MlpipeError(
            f"tuning worker {index} exited with {code}: {lines[-1] if lines else 'no output'} (log: {logs[index]})"
        )


def _worker_main(job_path: Path, index: int) -> None:
    from tasks.infra.settings import Settings
    from tasks.registry.store import connect

    job: TuneJob = pickle.loads(job_path.read_bytes())
    connect(Settings(root=job.root), job.dataset.name)  # trials log their runs into the data set's experiment
    run_study(job, worker=index)


if __name__ == "__main__":
    _worker_main(Path(sys.argv[1]), int(sys.argv[2]))
