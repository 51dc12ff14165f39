"""A registered version loaded as a model server loads it: in a fresh Python process started
outside the project, from the version's artifacts and code only (tasks/registry/serving_worker.py).

The pipeline's own process has the checkout's `models` package imported; a version loaded there
would run today's code, not the code it was registered with."""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from tasks.infra.errors import MlpipeError
from tasks.infra.retrying import TransientError, is_transient, transient_failure

WORKER = Path(__file__).with_name("serving_worker.py")
PROJECT_PACKAGES = ("flows", "tasks", "models")  # importable in the worker from the version's code only


class FreshProcess:
    """A version's predictions from a fresh process. Enter it early: the process makes its slow
    imports while the caller works; `predict` then loads the version and labels the rows. A
    worker answers once: a second `predict` (a retried task) starts another."""

    process: subprocess.Popen | None = None

    def __enter__(self) -> "FreshProcess":
        self.process = _start_worker()
        return self

    def predict(
        self,
        tracking_uri: str,
        name: str,
        version: str,
        rows: pd.DataFrame | None = None,
        check_requirements: bool = False,
        timeout: int = 300,
    ) -> np.ndarray:
        """The version's labels for `rows` (its input example when None), as strings. Raises
        TransientError when the store may answer next time, MlpipeError (with the worker's
        reason) when the version cannot serve."""
        import mlflow
        from mlflow.exceptions import MlflowException

        # Where the version's files are: a local store's are read as they lie, no registry lookup.
        try:
            model_uri = mlflow.MlflowClient(tracking_uri).get_model_version_download_uri(name, str(version))
        except MlflowException as error:
            kind = TransientError if is_transient(error) else MlpipeError
            raise kind(f"{name} v{version}: {error.message}") from None
        process, self.process = self.process or _start_worker(), None  # spent once asked
        with tempfile.TemporaryDirectory(prefix="mlpipe-serving-") as tmp:
            rows_path = None
            if rows is not None:
                rows_path = Path(tmp) / "rows.parquet"
                rows.reset_index(drop=True).to_parquet(rows_path)  # parquet keeps each column's dtype
            request = {
                "tracking_uri": tracking_uri,
                "model_uri": model_uri,
                "rows_path": str(rows_path) if rows_path else None,
                "packages": list(PROJECT_PACKAGES),
                "check_requirements": check_requirements,
            }
            try:
                out, err = process.communicate(json.dumps(request) + "\n", timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
                # A store or disk that stalls is as likely as a model that hangs: tried again, never final.
                raise TransientError(
                    f"{name} v{version}: no prediction within {timeout} s in a fresh process"
                ) from None
        replies = out.strip().splitlines()
        reply = json.loads(replies[-1]) if replies else {"error": (err.strip().splitlines() or ["no output"])[-1]}
        if "error" in reply:
            error = TransientError if transient_failure(reply.get("kinds", []), reply["error"]) else MlpipeError
            raise error(f"{name} v{version} in a fresh process: {reply['error']}")
        if rows is not None and len(reply["labels"]) != len(rows):
            count = len(reply["labels"])
            raise MlpipeError(f"{name} v{version} in a fresh process: {count} labels for {len(rows)} rows")
        return np.asarray(reply["labels"], dtype=str)

    def __exit__(self, *exc_info) -> None:
        if self.process is not None:  # never asked (nothing to decide): no wait for its imports
            self.process.kill()
            self.process.communicate()  # and its pipes closed
            self.process = None


# What the worker's environment keeps: it runs the version's own code, which needs the store and
# its artifacts (MLFLOW_*, and the bucket's own credentials where artifacts are read from it:
# AWS_*, AZURE_*, GOOGLE_APPLICATION_CREDENTIALS) and nothing of Prefect's, mlpipe's or the
# databases' secrets (PREFECT_API_AUTH_STRING, MLPIPE_CACHE_SECRET, ...).
WORKER_ENVIRONMENT = (
    *("PATH", "HOME", "LANG", "TZ", "TMPDIR", "LD_LIBRARY_PATH", "CUDA_VISIBLE_DEVICES"),
    *("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "GOOGLE_APPLICATION_CREDENTIALS"),
)
WORKER_PREFIXES = ("MLFLOW_", "AWS_", "AZURE_", "LC_", "OMP_", "MKL_", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")


def worker_environment(environ: dict[str, str]) -> dict[str, str]:
    """The part of `environ` a serving worker gets."""
    return {
        key: value
        for key, value in environ.items()
        if key in WORKER_ENVIRONMENT or key.upper().startswith(WORKER_PREFIXES)
    }


def _start_worker() -> subprocess.Popen:
    import os

    return subprocess.Popen(
        [sys.executable, "-I", str(WORKER)],  # -I: neither the working directory nor PYTHONPATH
        cwd=tempfile.gettempdir(),
        env=worker_environment(dict(os.environ)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def serving_check(process: FreshProcess, tracking_uri: str, name: str, version: str, rows=None, expected=None) -> None:
    """Raise unless the version loads in `process` (a fresh one, outside the project), imports only
    what its pip requirements install, and labels `rows` (its input example when None) as `expected`."""
    labels = process.predict(tracking_uri, name, version, rows, check_requirements=True)
    if expected is not None:
        differ = int(np.sum(labels != np.asarray(expected).astype(str)))
        if differ:
            raise MlpipeError(
                f"{name} v{version} served in a fresh process labels {differ} of {len(labels)} test rows "
                "otherwise than the evaluated model"
            )
