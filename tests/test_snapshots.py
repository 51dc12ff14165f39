"""The generated surfaces, written down: every command's --help and every deployment's form (the
flows' parameters, built from pydantic models in flows/parameters.py). A change to either shows in
the diff of tests/snapshots/, where a reader and a reviewer see it. After a deliberate change:

    UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/test_snapshots.py   # then review `git diff tests/snapshots`
"""

import json
import os
from pathlib import Path

import typer
from typer.testing import CliRunner

from flows.cli.app import app

SNAPSHOTS = Path(__file__).parent / "snapshots"


def _matches(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.write_text(text)
    assert path.exists(), f"{path} is missing: run with UPDATE_SNAPSHOTS=1"
    assert text == path.read_text(), f"{name} changed: rerun with UPDATE_SNAPSHOTS=1 and review `git diff {path}`"


def _command_paths(command, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [path]
    if hasattr(command, "commands"):  # a group (typer keeps its click private)
        for name in sorted(command.commands):
            paths += _command_paths(command.commands[name], (*path, name))
    return paths


def test_every_commands_help_is_the_one_written_down():
    runner = CliRunner()
    pages = []
    for path in _command_paths(typer.main.get_command(app)):
        done = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "100", "NO_COLOR": "1"}, terminal_width=100)
        assert done.exit_code == 0, done.output
        pages.append(f"$ mlpipe {' '.join((*path, '--help'))}\n{done.output.rstrip()}\n")
    _matches("cli_help.txt", "\n".join(pages))


def test_every_deployments_form_is_the_one_written_down(workspace):
    """The forms of a project with the built-in data set, each on a daily schedule."""
    from flows.deployments import build_deployments
    from tasks.infra.params import load_params
    from tasks.infra.prefect_private import deployment_schema
    from tasks.infra.settings import Settings

    deployments = build_deployments(load_params(Settings(root=workspace)), {"digits": "0 3 * * *"}, "UTC")
    forms = {d.name: deployment_schema(d).model_dump(mode="json", exclude_none=True) for d in deployments}
    _matches("deployment_forms.json", json.dumps(forms, indent=1, sort_keys=True) + "\n")
