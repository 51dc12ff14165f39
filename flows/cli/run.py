"""`mlpipe run`: the training pipeline. Its options are PipelineParams' fields, so the command
line, the Prefect UI form and the deployments take the same parameters."""

import inspect
import types
import typing
from pathlib import Path
from typing import Annotated

import typer

from flows.parameters import PipelineParams

OUT_OPTION = typer.Option(help="Also write the registered model, metrics.json and plots here (for DVC)")


def run(ctx: typer.Context, out: Path | None = None, **options) -> None:
    """Run the training pipeline: validate, train candidates, evaluate, register the best."""
    from flows.cli.registry import print_leaderboard
    from flows.cli.runtime import prepare_flow_run
    from tasks.infra.settings import get_settings

    options["models"] = [m.strip() for m in options["models"].split(",") if m.strip()]
    params = PipelineParams.checked(**options)
    prepare_flow_run(debug=ctx.obj["debug"])
    from flows.training import training_pipeline

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


def _options() -> list[inspect.Parameter]:
    """One --option per PipelineParams field, with its type, default and description; a list
    field (models) is comma-separated, as dvc.yaml's stages pass it."""
    found = []
    for name, field in PipelineParams.model_fields.items():
        default = field.get_default(call_default_factory=True)
        annotation = _bare(field.annotation)
        help_text = field.description + (" [default: params.yaml]" if default is None else "")
        if typing.get_origin(annotation) is list:
            choices = typing.get_args(typing.get_args(annotation)[0])
            annotation, default = str, ",".join(default)
            help_text += f"; comma-separated: {', '.join(choices)}"
        elif typing.get_origin(annotation) is typing.Literal:
            help_text += f"; one of {', '.join(typing.get_args(annotation))}"
            annotation = str  # PipelineParams refuses another value, in one line like every other
        names = ["--" + name.replace("_", "-")] + (["-d"] if name == "dataset" else [])
        option = typer.Option(*names, help=help_text)
        found.append(
            inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[annotation, option]
            )
        )
    return found


def _bare(annotation):
    """The type without pydantic's constraints (Annotated), which the command line does not need:
    PipelineParams checks the values."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return _bare(next(a for a in typing.get_args(annotation) if a is not type(None))) | None
    if typing.get_origin(annotation) is Annotated:
        return typing.get_args(annotation)[0]
    return annotation


run.__signature__ = inspect.Signature(
    [
        inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context),
        *_options(),
        inspect.Parameter(
            "out", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[Path | None, OUT_OPTION]
        ),
    ]
)
