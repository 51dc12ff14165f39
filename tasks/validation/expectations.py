"""Great Expectations: read a suite and run it on a table."""

import json
from pathlib import Path

import pandas as pd

from tasks.infra.errors import MlpipeError
from tasks.types import Dataset
from tasks.validation.report import ValidationReport


def load_suite(path: Path):
    """Read a suite from JSON. Every expectation must be valid: GX itself would skip a bad one
    with only a log line, and a suite that silently checks less is worse than none."""
    import great_expectations as gx
    from great_expectations.exceptions import GreatExpectationsError
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    if not path.exists():
        raise MlpipeError(f"no expectation suite at {path}")
    try:
        raw = json.loads(path.read_text())
        name, configs = raw["name"], raw.get("expectations", [])
    except (ValueError, TypeError, KeyError) as error:
        raise MlpipeError(f"expectation suite {path} is malformed: {error!r}") from None
    expectations = []
    for index, config in enumerate(configs):
        try:
            expectations.append(ExpectationConfiguration(**config).to_domain_obj())
        except (GreatExpectationsError, ValueError, TypeError, KeyError) as error:
            kind = config.get("type") if isinstance(config, dict) else config
            message = " ".join(str(error).split())
            raise MlpipeError(
                f"expectation suite {path} is malformed: expectation {index} ({kind}): {message}"
            ) from None
    suite = gx.ExpectationSuite(name=name, expectations=expectations, meta=raw.get("meta"))
    return suite


def run_suite(frame: pd.DataFrame, suite, dataset: str) -> ValidationReport:
    import logging

    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # GX pins this module's logger to INFO and announces a temporary docs folder on every context.
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas("pandas")
        .add_dataframe_asset(dataset)
        .add_batch_definition_whole_dataframe("all")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    result = batch.validate(suite)
    failures = [_describe_failure(r) for r in result.results if not r.success]
    return ValidationReport(
        dataset=dataset,
        success=bool(result.success),
        evaluated=len(result.results),
        failures=failures,
        result=result.describe_dict(),
        gx_result=result,
    )


def _describe_failure(result) -> str:
    config = result.expectation_config
    column = config.kwargs.get("column")
    where = f"({column})" if column else ""
    observed = result.result or {}
    if result.exception_info and result.exception_info.get("raised_exception"):
        detail = result.exception_info.get("exception_message", "raised an exception")
    elif "unexpected_count" in observed:
        examples = observed.get("partial_unexpected_list", [])[:3]
        detail = f"{observed['unexpected_count']} unexpected, e.g. {examples}"
    else:
        detail = f"observed {observed.get('observed_value')!r}"
    return f"{config.type}{where} {detail}"


def default_suite(dataset: Dataset):
    """The checks every data set gets until it has a suite of its own in expectations/."""
    import great_expectations as gx
    from great_expectations import expectations as gxe

    from tasks.data.sound_files import CLIP_COLUMNS, DURATION

    columns = [*dataset.feature_columns, dataset.label_column]
    if dataset.modality == "audio":  # the clips' figures and files; the samples' finiteness is a row check
        columns = [dataset.audio["path_column"], dataset.label_column, *CLIP_COLUMNS]
        return gx.ExpectationSuite(
            name=dataset.name,
            expectations=[
                gxe.ExpectTableColumnsToMatchSet(column_set=columns, exact_match=False),
                gxe.ExpectTableRowCountToBeBetween(min_value=10),
                *(gxe.ExpectColumnValuesToNotBeNull(column=c) for c in columns),
                gxe.ExpectColumnValuesToBeBetween(column=DURATION, min_value=0, strict_min=True),
            ],
            meta={"notes": "mlpipe default checks"},
        )
    checks = [
        gxe.ExpectTableColumnsToMatchSet(column_set=columns, exact_match=True),
        gxe.ExpectTableRowCountToBeBetween(min_value=10),
        *(gxe.ExpectColumnValuesToNotBeNull(column=c) for c in columns),
    ]
    if dataset.modality == "text":
        checks.append(gxe.ExpectColumnValueLengthsToBeBetween(column=dataset.feature_columns[0], min_value=1))
    return gx.ExpectationSuite(name=dataset.name, expectations=checks, meta={"notes": "mlpipe default checks"})
