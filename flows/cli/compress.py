"""`mlpipe compress`: a distilled, quantized or ONNX variant of @champion, registered as @compact
when it is non-inferior on the test rows and smaller and faster per row."""

import inspect

import typer

from flows.cli.options import CONTEXT, options_of
from flows.parameters import CompressParams


def compress(ctx: typer.Context, **options) -> None:
    """Distil @champion into a smaller network, quantize it and export it to ONNX; register the
    fastest variant that is non-inferior to the champion on the test rows as @compact."""
    from flows.cli.runtime import prepare_flow_run

    params = CompressParams.checked(**options)
    prepare_flow_run(debug=ctx.obj["debug"])
    from flows.compression import compression_pipeline

    result = compression_pipeline(**params.model_dump())
    if result.rows:
        header = f"{'variant':<20}{'test_acc':>10}{'size_KB':>10}{'p50_ms':>9}{'p95_ms':>9}{'rows/s':>9}  verdict"
        typer.echo(header)
        for row in result.rows:
            typer.echo(
                f"{row['variant']:<20}{row['test_accuracy']:>10.4f}{row['size_bytes'] / 1024:>10.1f}"
                f"{row['p50_ms']:>9.3f}{row['p95_ms']:>9.3f}{row['rows_per_second']:>9.0f}  {row['decision']}"
            )
    if result.version:
        typer.echo(f"\n{result.dataset} v{result.version} is @compact (of v{result.champion_version}): {result.reason}")
    else:
        typer.echo(f"\nNo @compact registered for {result.dataset}: {result.reason}")


compress.__signature__ = inspect.Signature([CONTEXT, *options_of(CompressParams)])
