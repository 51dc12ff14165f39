"""What several commands share: the --dataset option, a data set's name, a parameter model's errors."""

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


def parse(model, **values):
    """Build a pydantic model; a bad value becomes one line naming the parameter."""
    from pydantic import ValidationError

    from tasks.infra.errors import MlpipeError

    try:
        return model(**values)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise MlpipeError(f"bad value for {where} ({first.get('input')!r}): {message}") from None
