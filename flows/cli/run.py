"""`mlpipe run`: the training pipeline. Its options are PipelineParams' fields, so the command
line, the Prefect UI form and the deployments take the same parameters."""

import inspect
from pathlib import Path
from typing import Annotated

import typer

from flows.cli.options import CONTEXT, comma_separated, options_of
from flows.parameters import PipelineParams

OUT_OPTION = typer.Option(help="Also write the registered model, metrics.json and plots here (for DVC)")
TUNE_OPTION = typer.Option(
    help="First tune each network family with this many trials (`mlpipe tune`), then train with what it keeps"
)


def run(ctx: typer.Context, out: Path | None = None, tune: int | None = None, **options) -> None:
    """Run the training pipeline: validate, train candidates, evaluate, register the best."""
    from flows.cli.registry import print_leaderboard
    from flows.cli.runtime import prepare_flow_run
    from tasks.infra.settings import get_settings
    from tasks.infra.vocabulary import NETWORK_FAMILIES

    params = PipelineParams.checked(**comma_separated(options))
    tuned = [family for family in params.models if family in NETWORK_FAMILIES]
    if tune is not None:  # checked before anything starts
        from flows.parameters import TuneParams
        from tasks.infra.errors import MlpipeError

        if not tuned:
            raise MlpipeError(f"--tune tunes network families: --models has none ({', '.join(params.models)})")
        TuneParams.checked(dataset=params.dataset, models=tuned, trials=tune)
    prepare_flow_run(debug=ctx.obj["debug"])
    from flows.training import training_pipeline

    if tune is not None:
        from flows.cli.tune import print_tuning
        from flows.tuning import tuning_pipeline

        trials = {"trials": tune, "seed": params.seed, "max_epochs": params.max_epochs}  # as this run will train
        print_tuning(tuning_pipeline(dataset=params.dataset, models=tuned, **trials))

    registration = training_pipeline(**params.model_dump())
    settings = get_settings()
    print_leaderboard(registration.dataset, limit=10)
    for note in registration.notes:
        typer.echo(note)
    typer.echo(
        f"\nRegistered model '{registration.dataset}' version {registration.version} "
        f"({registration.best_family}); {registration.reason}."
    )
    if out is not None:
        from tasks.registry.export import export_version

        export_version(registration.dataset, registration.version, out, settings)
        typer.echo(f"Model, metrics and plots: {out}")
    typer.echo(f"Browse runs and the registry: mlflow ui --backend-store-uri {settings.shown_tracking_uri}")
    print_prefect_ui(settings)


def print_prefect_ui(settings) -> None:
    """Where the run is in the Prefect UI, when it went to the project's server (which outlives it)."""
    import os

    from tasks.infra.project_server import running

    server = running(settings)
    if server is not None and os.environ.get("PREFECT_API_URL") == server.api_url:
        typer.echo(f"Runs in the Prefect UI: {server.url}/runs (the project's server; `mlpipe down` stops it)")


run.__signature__ = inspect.Signature(
    [
        CONTEXT,
        *options_of(PipelineParams),
        inspect.Parameter(
            "tune", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[int | None, TUNE_OPTION]
        ),
        inspect.Parameter(
            "out", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[Path | None, OUT_OPTION]
        ),
    ]
)
