"""The work pool of `mlpipe deploy` and the worker of `mlpipe worker`: a flow run's caller chooses
its parameters, never what runs.

Prefect's default process template lets any caller of the API set a flow run's `command`, `env`
and `working_dir` (`--job-variable command="sh -c ..."` would run on every worker). mlpipe's pool
has no job variables at all, so Prefect's server refuses a flow run that sets one; and the worker
trusts nothing the API says about how to start a run: it starts Prefect's engine with its own
environment, in a fresh folder, and only for mlpipe's own deployments (no pull steps, whose
`run_shell_script` would run anything).
"""

import os
import sys

from prefect.utilities.processutils import command_to_string
from prefect.workers.process import ProcessJobConfiguration, ProcessWorker

from tasks.infra.errors import MlpipeError
from tasks.infra.prefect_private import FLOW_ENTRYPOINT, fix_command, resolve_hook_flows_with, worker_environment

# No variables, and no other keys: Prefect's server refuses a flow run or deployment that sets
# any job variable (422), and the worker's configuration takes its defaults.
BASE_JOB_TEMPLATE = {
    "job_configuration": {"stream_output": True},
    "variables": {"type": "object", "properties": {}, "additionalProperties": False},
}


def mlpipe_flows() -> dict:
    """The flows `mlpipe deploy` registers (flows/deployments.py), by module entrypoint."""
    from flows.compression import compression_pipeline
    from flows.inference import batch_inference
    from flows.pretraining import pretraining_pipeline
    from flows.training import training_pipeline
    from flows.tuning import tuning_pipeline

    flows = (training_pipeline, tuning_pipeline, compression_pipeline, pretraining_pipeline, batch_inference)
    return {f"{flow.fn.__module__}.{flow.fn.__name__}": flow for flow in flows}


def mlpipe_entrypoints() -> set[str]:
    return set(mlpipe_flows())


def refusal(flow_run, deployment) -> str | None:
    """Why this worker will not run the flow run, or None: only mlpipe's deployments, as deployed."""
    if deployment is None:
        return "it belongs to no deployment (mlpipe's workers run only what `mlpipe deploy` registered)"
    if deployment.pull_steps:
        return f"its deployment {deployment.name!r} has pull steps, which run commands on the worker"
    if deployment.entrypoint not in mlpipe_entrypoints():
        return f"its deployment {deployment.name!r} runs {deployment.entrypoint!r}, not one of mlpipe's flows"
    if deployment.job_variables or flow_run.job_variables:
        return "it sets job variables, which mlpipe's pool does not have"
    return None


def ensure_pool(client, name: str) -> str:
    """Create the process pool with the fixed template, or put the template back on an existing
    one (made by an older mlpipe, or edited since). Says what it did."""
    from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
    from prefect.exceptions import ObjectNotFound

    try:
        pool = client.read_work_pool(name)
    except ObjectNotFound:
        client.create_work_pool(WorkPoolCreate(name=name, type="process", base_job_template=BASE_JOB_TEMPLATE))
        return f"Created the process work pool {name!r}"
    if pool.type != "process":
        raise MlpipeError(f"the work pool {name!r} is a {pool.type!r} pool: mlpipe deploys to process pools")
    if pool.base_job_template != BASE_JOB_TEMPLATE:
        client.update_work_pool(name, WorkPoolUpdate(base_job_template=BASE_JOB_TEMPLATE))
        return f"Fixed the job template of the work pool {name!r} (no job variables a flow run could set)"
    return f"The work pool {name!r} is ready"


class FixedProcessWorker(ProcessWorker):
    """Prefect's process worker, but whatever the pool's template says (a caller of the API may
    edit it), each run starts `python -m prefect.engine` with this worker's environment, in a
    temporary folder, and runs only mlpipe's deployments. The engine is told the checked
    entrypoint, so it imports that flow and never reads the deployment again (a pull step added
    after the check would run there); the worker's own crash and cancellation hooks resolve the
    flow by name among mlpipe's, never from the API."""

    @classmethod
    def __dispatch_key__(cls) -> str:
        return "mlpipe-process"  # its own key in Prefect's registry of worker types; Prefect's stays

    async def run(self, flow_run, configuration: ProcessJobConfiguration, task_status=None):

        deployment = await self.client.read_deployment(flow_run.deployment_id) if flow_run.deployment_id else None
        if (reason := refusal(flow_run, deployment)) is not None:
            # Raised before the process starts: Prefect marks the run crashed with this message.
            raise MlpipeError(f"mlpipe's worker refused flow run {flow_run.name!r}: {reason}")
        fix_command(configuration, command_to_string([sys.executable, "-m", "prefect.engine"]))
        configuration.working_dir = None
        environment = {**os.environ, **worker_environment(configuration, flow_run)}
        configuration.env = environment | {FLOW_ENTRYPOINT: deployment.entrypoint}
        resolve_hook_flows_with(_flow_of)
        return await super().run(flow_run, configuration, task_status)


async def _flow_of(flow_run, **_):
    """The flow of one of mlpipe's deployments, by its entrypoint, never run from the API's data."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        deployment = await client.read_deployment(flow_run.deployment_id)
    flows = mlpipe_flows()
    if deployment.entrypoint not in flows:
        raise MlpipeError(f"{deployment.entrypoint!r} is not one of mlpipe's flows")
    return flows[deployment.entrypoint]
