"""Deployments people schedule and trigger from the Prefect UI.

`mlpipe serve` registers one training deployment per data set in params.yaml's `schedules`
(retrained on its cron, and on the data set's events that params.yaml's `retraining` names),
`train` (no schedule: the UI's parameter form, for any data set), `tune` (Optuna studies, with a
form too), `compress` (a compact variant of @champion, with a form), `pretrain` (an encoder
pretrained on a data set's texts, with a form) and `predict` (batch inference, with monitoring),
then runs their flow runs in this process's runner until Ctrl-C.
"""

from prefect.types.entrypoint import EntrypointType
from prefect.utilities.annotations import freeze
from prefect.utilities.callables import ParameterSchema

from flows.compression import compression_pipeline
from flows.forms import PRETRAIN_FROM_PARAMS_YAML, form_schema
from flows.inference import batch_inference
from flows.pretraining import pretraining_pipeline
from flows.training import training_pipeline
from flows.tuning import tuning_pipeline
from tasks.data.loading import known_datasets
from tasks.infra.errors import MlpipeError
from tasks.infra.events import dataset_resource_id
from tasks.infra.params import ProjectParams
from tasks.infra.prefect_private import deployment_schema, set_deployment_schema
from tasks.infra.runs import artifact_key
from tasks.infra.settings import get_settings

TAGS = ["mlpipe"]


class ClosedParameterSchema(ParameterSchema):
    """A form that refuses a parameter the flow does not have when the run is created: a flow run
    started with one would crash without saying why."""

    additionalProperties: bool = False  # noqa: N815 (JSON Schema's name)


def schedules_from(project: ProjectParams, only: list[str] | None = None) -> dict[str, str]:
    """params.yaml's `schedules` (data set -> cron), limited to `only` when given."""
    schedules = project.schedules
    if only:
        missing = [name for name in only if name not in schedules]
        if missing:
            raise MlpipeError(f"params.yaml has no schedule for {', '.join(missing)} (schedules: {list(schedules)})")
        schedules = {name: schedules[name] for name in only}
    return schedules


def retraining_triggers(project: ProjectParams, dataset: str) -> list:
    """A trigger on the data set's events (`mlpipe data add`'s new version, monitoring's drift).
    Prefect's reactive trigger starts a run on the first event, then ignores the data set's
    events for `debounce_seconds`: a burst of them starts one run."""
    from datetime import timedelta

    from prefect.events import DeploymentEventTrigger

    retraining = project.retraining
    if not retraining.events:
        return []
    trigger = DeploymentEventTrigger(
        name=f"retrain {dataset} on {' or '.join(retraining.events)}",
        expect=set(retraining.events),
        match={"prefect.resource.id": dataset_resource_id(dataset)},
        posture="Reactive",
        threshold=1,
        within=timedelta(seconds=retraining.debounce_seconds),
    )
    return [trigger]


def build_deployments(project: ProjectParams, schedules: dict[str, str], timezone: str = "UTC") -> list:
    """RunnerDeployments for `prefect.serve`. Module entrypoints: runs import the installed
    package, whatever the runner's working directory. The training forms say each field's range
    and params.yaml default, and offer the project's data sets."""
    common = {"entrypoint_type": EntrypointType.MODULE_PATH, "tags": TAGS}
    deployments = _scheduled_training(project, schedules, timezone, common) + _on_demand(common)
    _add_form_hints(deployments, project)
    deployments.append(
        batch_inference.to_deployment(name="predict", description="Label a file with a data set's @champion.", **common)
    )
    return deployments


def _scheduled_training(project: ProjectParams, schedules: dict[str, str], timezone: str, common: dict) -> list:
    """A training deployment per scheduled data set: on its cron, and on its events."""
    from prefect.schedules import Cron

    deployments = []
    for dataset, cron in schedules.items():
        try:
            schedule = Cron(cron, timezone=timezone)
        except ValueError as error:
            raise MlpipeError(f"params.yaml: schedules.{dataset}: {cron!r} is not a valid cron: {error}") from None
        deployments.append(
            training_pipeline.to_deployment(
                name=f"train-{artifact_key(dataset)}",
                schedule=schedule,
                triggers=retraining_triggers(project, dataset),
                parameters={"dataset": freeze(dataset)},  # its form shows the data set, read-only
                description=f"Retrain {dataset} on `{cron}` ({timezone}): validate, train, evaluate, register.",
                **common,
            )
        )
    return deployments


def _on_demand(common: dict) -> list:
    """train, tune, compress and pretrain: no schedule, a form to fill and run."""
    return [
        training_pipeline.to_deployment(
            name="train", description="Train candidates on any data set: fill the form and press Run.", **common
        ),
        tuning_pipeline.to_deployment(
            name="tune",
            description="Tune network families' settings for a data set with Optuna; later runs train with the best.",
            **common,
        ),
        compression_pipeline.to_deployment(
            name="compress",
            description="Distil, quantize and export @champion; register the fastest non-inferior variant as @compact.",
            **common,
        ),
        pretraining_pipeline.to_deployment(
            name="pretrain",
            description="Pretrain an encoder on a text data set's own texts; register it as <name>-encoder.",
            **common,
        ),
    ]


def _add_form_hints(deployments: list, project: ProjectParams) -> None:
    """Each form closed to unknown parameters, with each field's range, params.yaml default and the known data sets."""
    known = known_datasets(get_settings())
    for deployment in deployments:
        # Set, not defaulted: Prefect sends the schema with exclude_unset.
        schema = ClosedParameterSchema(**deployment_schema(deployment).model_dump(), additionalProperties=False)
        own = PRETRAIN_FROM_PARAMS_YAML if deployment.name == "pretrain" else None
        form_schema(schema.properties, project.model_dump(), known, own)
        set_deployment_schema(deployment, schema)
