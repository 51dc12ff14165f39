"""What several commands share: the --dataset option, a data set's name, and options built from
a flow's parameter model (`mlpipe run`, `mlpipe tune`)."""

import inspect
import types
import typing
from typing import Annotated

import typer

from flows.parameters import DATASET_HELP
from tasks.data.builtin import BUILT_IN

DEFAULT_DATASET = BUILT_IN[0]
DatasetOption = Annotated[str, typer.Option("--dataset", "-d", help=DATASET_HELP)]


def dataset_name(dataset: str) -> str:
    """A spec's path names its data set by the spec's `name`."""
    from pathlib import Path

    from tasks.data.spec import is_spec_path, read_spec

    return read_spec(Path(dataset)).name if is_spec_path(dataset) else dataset


CONTEXT = inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)


def options_of(model) -> list[inspect.Parameter]:
    """One --option per field of a flow's parameter model, with its type, default and description;
    a list field (models) is comma-separated, as dvc.yaml's stages pass it."""
    found = []
    for name, field in model.model_fields.items():
        default = field.get_default(call_default_factory=True)
        annotation = _bare(field.annotation)
        says_empty = "(empty:" in field.description  # the description says what an unset value means
        help_text = field.description + (" [default: params.yaml]" if default is None and not says_empty else "")
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


def comma_separated(options: dict) -> dict:
    """The options as the model takes them: `models` back to a list."""
    return options | {"models": [m.strip() for m in options["models"].split(",") if m.strip()]}
