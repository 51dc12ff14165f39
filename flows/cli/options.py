"""What several commands share: the --dataset option and a data set's name."""

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
