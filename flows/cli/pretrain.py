"""`mlpipe pretrain`: a BERT-style encoder pretrained from scratch on a text data set's own texts,
registered as `<name>-encoder`, whose `models:/` URI `mlpipe run --backbone` takes."""

import inspect
from typing import Annotated

import typer

from flows.cli.options import CONTEXT, options_of
from flows.parameters import PretrainParams

TEXTS_HELP = PretrainParams.model_fields["texts"].description + "; give --texts again, or separate files by commas"


def pretrain(ctx: typer.Context, texts: list[str] | None = None, **options) -> None:
    """Pretrain a BERT-style encoder with masked-language modelling on a text data set's training and
    validation texts (never its test rows) and unlabelled text files; register it as <name>-encoder."""
    from flows.cli.runtime import prepare_flow_run

    files = [path.strip() for given in texts or [] for path in given.split(",") if path.strip()]
    params = PretrainParams.checked(**options, texts=files)
    prepare_flow_run(debug=ctx.obj["debug"])
    from flows.pretraining import pretraining_pipeline

    summary = pretraining_pipeline(**params.model_dump())
    files = ", ".join(f"{path} ({lines} lines)" for path, lines in summary["file_lines"].items())
    loss = "none" if summary["final_val_loss"] is None else f"{summary['final_val_loss']:.4f}"
    typer.echo(
        f"Pretrained on {summary['texts']} texts: {summary['dataset_rows']} training and validation rows of "
        f"{summary['dataset']}" + (f", {files}" if files else "") + f" ({summary['dropped_as_test']} equal to a "
        "test row left out)"
    )
    typer.echo(
        f"{summary['epochs']} epochs (stopped by {summary['stopped_by']}), final val/loss {loss}, "
        f"{summary['seconds']:.0f} s, {summary['parameters']:,} parameters"
    )
    typer.echo(f"Backbone: {summary['uri']}")
    typer.echo(f"Fine-tune it: mlpipe run --dataset {params.dataset} --models pretrained --backbone {summary['uri']}")


def _parameters() -> list[inspect.Parameter]:
    """PretrainParams' options, with --texts repeatable (a list option) rather than one comma-separated string."""
    option = typer.Option("--texts", help=TEXTS_HELP, metavar="FILE", show_default=False)
    texts = inspect.Parameter(
        "texts", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[list[str] | None, option]
    )
    return [CONTEXT, *(texts if p.name == "texts" else p for p in options_of(PretrainParams))]


pretrain.__signature__ = inspect.Signature(_parameters())
