"""The `mlpipe` command tree. Heavy libraries load inside the commands that need them."""

from typing import Annotated

import typer

from flows.cli import compress, data, pretrain, registry, run, runtime, servers, tune

app = typer.Typer(
    name="mlpipe",
    help="Validate, train, evaluate and register models with Prefect, Great Expectations, Lightning, MLflow and DVC.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def main_options(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors")] = False,
) -> None:
    ctx.obj = {"debug": debug}


app.command()(run.run)
app.command()(tune.tune)
app.command()(compress.compress)
app.command()(pretrain.pretrain)
app.command()(registry.reproduce)
app.command()(data.validate)
commands = (registry.compare, registry.promote, registry.rollback, registry.predict)
for command in (*commands, servers.up, servers.down, servers.serve, servers.deploy, servers.worker):
    app.command()(command)
app.add_typer(data.data_app, name="data")


def main() -> None:
    """The console script `mlpipe`."""
    runtime.run_app(app)
