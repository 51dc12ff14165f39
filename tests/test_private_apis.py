"""The private parts of Prefect, MLflow and Great Expectations that mlpipe relies on (each in one
module that says why; pyproject.toml pins their minor versions): an upgrade that moves one fails
here, by name, instead of somewhere in a flow run."""

import inspect

from tasks.infra import prefect_private
from tasks.registry.mlflow_private import run_context_tags


def test_prefect_deployments_keep_their_form_schema_where_mlpipe_edits_it():
    from prefect import flow
    from prefect.utilities.callables import ParameterSchema

    @flow
    def form(dataset: str = "digits", max_epochs: int = 3) -> None: ...

    deployment = form.to_deployment(name="check")
    schema = prefect_private.deployment_schema(deployment)
    assert isinstance(schema, ParameterSchema) and set(schema.properties) == {"dataset", "max_epochs"}
    closed = ParameterSchema(**schema.model_dump() | {"required": ["dataset"]})
    prefect_private.set_deployment_schema(deployment, closed)
    assert prefect_private.deployment_schema(deployment).required == ["dataset"]


def test_prefect_process_workers_keep_the_command_flag_and_the_base_environment():
    from prefect.client.schemas.objects import FlowRun
    from prefect.workers.process import ProcessJobConfiguration

    configuration = ProcessJobConfiguration()
    prefect_private.fix_command(configuration, "python -m prefect.engine")
    assert configuration.command == "python -m prefect.engine" and configuration._command_configured
    run = FlowRun(flow_id="00000000-0000-0000-0000-000000000001", name="check")
    environment = prefect_private.worker_environment(configuration, run)
    assert environment["PREFECT__FLOW_RUN_ID"] == str(run.id)


def test_prefect_engine_reads_the_flow_entrypoint_from_the_environment():
    import prefect.flow_engine
    import prefect.flows

    sources = inspect.getsource(prefect.flows) + inspect.getsource(prefect.flow_engine)
    assert prefect_private.FLOW_ENTRYPOINT in sources


def test_prefect_process_workers_find_hook_flows_through_the_function_mlpipe_replaces():
    import prefect.workers.process

    assert "resolve_flow=load_flow_from_flow_run" in inspect.getsource(prefect.workers.process)  # looked up per run
    original = prefect.workers.process.load_flow_from_flow_run
    try:
        prefect_private.resolve_hook_flows_with(print)
        assert prefect.workers.process.load_flow_from_flow_run is print
    finally:
        prefect.workers.process.load_flow_from_flow_run = original


def test_prefect_server_pieces_mlpipe_names_are_there():
    import importlib

    from prefect.server.api.server import create_app

    assert importlib.import_module(prefect_private.LEASE_STORAGE_ON_DISK)
    assert {"ephemeral", "final"} <= set(inspect.signature(create_app).parameters)  # tasks/infra/idle_server.py


def test_prefect_log_and_event_workers_drain():
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    assert callable(APILogWorker.drain_all) and callable(EventsWorker.drain_all)
    prefect_private.drain_prefect_workers(timeout=1)  # none running: returns at once


def test_mlflow_resolves_a_runs_context_tags():
    tags = run_context_tags({"mlpipe.role": "check"})
    assert tags["mlpipe.role"] == "check"
    assert {"mlflow.source.name", "mlflow.source.type", "mlflow.user"} <= set(tags)


def test_great_expectations_keeps_the_templates_the_data_docs_page_includes():
    from great_expectations.render.view import DefaultJinjaPageView

    environment = DefaultJinjaPageView().env
    for name in ("section.j2", "data_docs_default_styles.css"):  # TemplateNotFound once renamed
        assert environment.get_template(name).name == name
    assert "section_loop" in environment.loader.get_source(environment, "section.j2")[0]  # data_docs.PAGE sets it
