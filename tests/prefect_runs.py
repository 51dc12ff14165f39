"""Reading deployments and flow runs from the test Prefect server, waiting where they take time."""

import subprocess
import time
from contextlib import contextmanager

import pytest


@contextmanager
def talking_to(api_url: str, auth_string: str | None = None):
    """This process's Prefect client on `api_url`, whatever server the session's `prefect_api`
    fixture set: it sets Prefect's settings context as well as the environment, and the context
    wins over a changed environment variable."""
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    settings = {PREFECT_API_URL: api_url} | ({PREFECT_API_AUTH_STRING: auth_string} if auth_string else {})
    with temporary_settings(settings), pytest.MonkeyPatch.context() as patch:
        patch.setenv("PREFECT_API_URL", api_url)
        if auth_string:
            patch.setenv("PREFECT_API_AUTH_STRING", auth_string)
        yield


def prefect_client():
    from prefect.client.orchestration import get_client

    return get_client(sync_client=True)


def wait_for_deployment(name: str, process: subprocess.Popen | None = None, timeout: float = 180):
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + timeout
    with prefect_client() as client:
        while True:
            try:
                return client.read_deployment_by_name(name)
            except ObjectNotFound:
                assert process is None or process.poll() is None, "the serving process exited"
                assert time.monotonic() < deadline, f"no deployment {name} within {timeout:.0f} s"
                time.sleep(1)


def wait_for_flow_run(flow_run_id, timeout: float = 420):
    deadline = time.monotonic() + timeout
    with prefect_client() as client:
        while True:
            flow_run = client.read_flow_run(flow_run_id)
            if flow_run.state.is_final():
                return flow_run
            assert time.monotonic() < deadline, f"flow run still {flow_run.state.name} after {timeout:.0f} s"
            time.sleep(2)


def stop_serving(process: subprocess.Popen, timeout: float = 60) -> None:
    """Ctrl-C for `mlpipe serve`, as a person stops it; killed with its flow runs if it hangs."""
    import os
    import signal

    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def artifacts_of(flow_run_id) -> list:
    """The artifacts one flow run left, filtered by the server: an unfiltered read returns only
    the first page (200) of a server that every test in the session writes to."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with prefect_client() as client:
        return client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
