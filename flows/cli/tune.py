"""`mlpipe tune`: an Optuna study per network family, on the validation rows; the best settings,
when they beat the defaults on the rows the study did not choose by, go to params/<name>.yaml,
which every later run of the data set reads."""

import inspect

import typer

from flows.cli.options import CONTEXT, comma_separated, options_of
from flows.parameters import TuneParams


def tune(ctx: typer.Context, **options) -> None:
    """Tune network families' settings for a data set with Optuna; later runs train with the best,
    when they beat params.yaml's on validation rows the study did not choose by."""
    from flows.cli.runtime import prepare_flow_run

    params = TuneParams.checked(**comma_separated(options))
    prepare_flow_run(debug=ctx.obj["debug"])
    from flows.tuning import tuning_pipeline

    print_tuning(tuning_pipeline(**params.model_dump()))


def print_tuning(summaries: dict) -> None:
    for family, summary in summaries.items():
        counts = ", ".join(f"{n} {state.lower()}" for state, n in summary["counts"].items() if n)
        if summary["value"] is None:
            typer.echo(f"{family}: no trial finished ({counts})")
            continue
        settings = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in summary["settings"].items()
        )
        typer.echo(
            f"{family}: best val/accuracy {summary['value']:.4f} on the search rows (trial {summary['best_trial']} "
            f"of study {summary['study']}; {counts}): {settings}"
        )
        kept = "the tuned settings" if summary["kept"] == "tuned" else "params.yaml's defaults"
        typer.echo(f"{family}: keeps {kept} ({summary['why']})")
    for path in sorted({s["written_to"] for s in summaries.values() if "written_to" in s}):
        typer.echo(f"Verdicts: {path} (read by every run of this data set)")


tune.__signature__ = inspect.Signature([CONTEXT, *options_of(TuneParams)])
