"""The names of flow runs, for people: what the run is and when it started."""

from flows.parameters import FlowParams


def run_namer(model: type[FlowParams], kind: str = ""):
    """The flow's `flow_run_name`: what the run is, for people, `digits-cnn,rnn-2026-11-23T0300`
    (data set, kind, families, start in UTC). Read before the body checks the parameters."""

    def name() -> str:
        from pathlib import Path

        from prefect import runtime

        from tasks.data.spec import is_spec_path
        from tasks.infra.runs import run_title

        given, defaults = runtime.flow_run.parameters, model.model_fields
        dataset = str(given.get("dataset") or defaults["dataset"].default)
        if "models" in defaults:
            models = given.get("models") or defaults["models"].get_default(call_default_factory=True)
        elif "family" in defaults:  # compression: the student's family
            models = [given.get("family") or "student"]
        else:  # pretraining: what it makes
            models = ["encoder"]
        title = Path(dataset).stem if is_spec_path(dataset) else dataset
        return run_title(f"{title}-{kind}" if kind else title, models, runtime.flow_run.scheduled_start_time)

    return name
