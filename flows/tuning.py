"""The tuning flow: load -> validate -> split -> a study per network family -> its verdict in
params/<name>.yaml. Trials train on the training rows and are judged on half of the validation
rows, as the pipeline's choice is; the best settings are kept only if they beat params.yaml's on
the other half. The test rows are never read."""

from prefect import flow, runtime

from flows.parameters import TuneParams, flow_parameters
from flows.run_names import run_namer
from tasks.data.tasks import load_dataset, split_dataset
from tasks.infra.objects import result_storage
from tasks.infra.params import load_params
from tasks.infra.settings import get_settings
from tasks.registry.store import champion_profile, check_tracking_store
from tasks.tuning.space import check_space
from tasks.tuning.tasks import publish_tuning, tune_family
from tasks.validation.tasks import publish_validation, validate_dataset


@flow(name="tuning_pipeline", flow_run_name=run_namer(TuneParams, "tune"))
@flow_parameters(TuneParams)
def tuning_pipeline(params: TuneParams) -> dict:
    """Tune each network family's settings for a data set with Optuna, on the validation rows:
    a study per family, shared by every process that joins it, and the best settings, when they
    beat params.yaml's on the rows the study did not choose by, written to params/<name>.yaml
    for every later run of the data set."""
    return _tune(params)


def _tune(params: TuneParams) -> dict:
    settings = get_settings()
    project = load_params(settings)
    seed = params.seed if params.seed is not None else project.seed
    check_tracking_store(settings)
    dataset = load_dataset(params.dataset)
    for family in params.models:  # a missing space, or a key its family does not take, stops the run here
        check_space(project, dataset.modality, family, seed)
    run_dir = settings.outputs_dir / dataset.name / f"tune-{runtime.flow_run.id}"
    reference = champion_profile(dataset.name, settings)
    storage = {"result_storage": result_storage(settings)}
    report = validate_dataset.with_options(**storage)(dataset, run_dir, project.validation, reference, False)
    publish_validation(report, run_dir)
    parts = split_dataset(dataset, project.split, seed)
    trials = params.trials or project.tuning.trials
    timeout = params.timeout_minutes or project.tuning.timeout_minutes
    summaries = {
        family: tune_family(dataset, parts, project, family, seed, trials, timeout, params.workers, params.max_epochs)
        for family in params.models
    }
    publish_tuning(dataset.name, list(summaries.values()))
    return summaries
