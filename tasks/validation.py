"""Great Expectations: run a data set's suite and turn the result into a verdict people can read."""

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from prefect import task

from tasks.errors import MlpipeError, ValidationFailed
from tasks.settings import get_settings

if TYPE_CHECKING:
    from tasks.datasets import Dataset


@dataclass
class ValidationReport:
    dataset: str
    success: bool  # every expectation and every check that may fail the run passed
    evaluated: int
    failures: list[str]  # one readable line per failed expectation or check
    result: dict  # Great Expectations' own description of the run
    checks: list[dict] = field(default_factory=list)  # row-level checks and drift, passed or not
    warnings: list[str] = field(default_factory=list)  # failed checks configured only to warn
    warn_only: bool = False  # failures were let through (--warn-only)
    gx_result: object = field(default=None, repr=False)  # for rendering Data Docs
    report_path: Path | None = None  # validation.json, once written
    docs_path: Path | None = None  # the Data Docs page, once written

    def summary(self) -> str:
        if self.success:
            return f"{self.dataset}: all {self.evaluated} expectations and checks passed"
        return f"{self.dataset}: {len(self.failures)} of {self.evaluated} expectations and checks failed: " + "; ".join(
            self.failures
        )

    @property
    def outcome(self) -> str:
        """passed | failed | failed (warn-only): the word for tags."""
        return "passed" if self.success else "failed (warn-only)" if self.warn_only else "failed"

    def write(self, path: Path) -> Path:
        from tasks.files import write_atomic

        document = {"summary": self.summary(), "checks": self.checks, "warnings": self.warnings, **self.result}
        write_atomic(path, json.dumps(document, indent=2, default=str))
        self.report_path = path
        return path

    def write_data_docs(self, path: Path) -> Path:
        """Great Expectations' Data Docs page for this validation, as one static HTML file."""
        from great_expectations.render.renderer import ValidationResultsPageRenderer
        from great_expectations.render.view import DefaultJinjaPageView

        path.parent.mkdir(parents=True, exist_ok=True)
        page = ValidationResultsPageRenderer().render(self.gx_result)
        path.write_text(DefaultJinjaPageView().render(page))
        self.docs_path = path
        return path

    def markdown(self) -> str:
        """The summary people see in the Prefect UI."""
        icon = {"passed": "passed", "failed": "**FAILED**", "failed (warn-only)": "**FAILED** (warn-only: run went on)"}
        lines = [f"# Validation of `{self.dataset}`: {icon[self.outcome]}", ""]
        lines += [f"{self.evaluated} expectations and checks, {len(self.failures)} failed.", ""]
        if self.failures:
            lines += ["## Failed", "", *(f"- {failure}" for failure in self.failures), ""]
        if self.warnings:
            lines += ["## Warnings", "", *(f"- {warning}" for warning in self.warnings), ""]
        lines += ["## Checks", "", "| check | passed | observed |", "|---|---|---|"]
        lines += [f"| {c['check']} | {'yes' if c['success'] else 'no'} | {c['message']} |" for c in self.checks]
        return "\n".join(lines)


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


def default_suite(dataset: "Dataset"):
    """The checks every data set gets until it has a suite of its own in expectations/."""
    import great_expectations as gx
    from great_expectations import expectations as gxe

    columns = [*dataset.feature_columns, dataset.label_column]
    checks = [
        gxe.ExpectTableColumnsToMatchSet(column_set=columns, exact_match=True),
        gxe.ExpectTableRowCountToBeBetween(min_value=10),
        *(gxe.ExpectColumnValuesToNotBeNull(column=c) for c in columns),
    ]
    if dataset.modality == "text":
        checks.append(gxe.ExpectColumnValueLengthsToBeBetween(column=dataset.feature_columns[0], min_value=1))
    return gx.ExpectationSuite(name=dataset.name, expectations=checks, meta={"notes": "mlpipe default checks"})


def validate(frame: pd.DataFrame, dataset: str, suite_path: Path, report_path: Path) -> ValidationReport:
    """A table against one suite file, report written: the suite alone, no row checks."""
    report = run_suite(frame, load_suite(suite_path), dataset)
    report.write(report_path)
    return report


def check_dataset(
    dataset: "Dataset", limits: dict | None = None, reference: dict | None = None, warn_only: bool = False
) -> ValidationReport:
    """The data set's suite (or the default checks), the row-level checks and, given the profile
    of the champion's data, drift: one report."""
    from tasks.data_checks import run_checks
    from tasks.drift import compare

    limits = limits or {}
    suite_path = get_settings().expectation_suite_path(dataset.name)
    suite = load_suite(suite_path) if suite_path.exists() else default_suite(dataset)
    report = run_suite(dataset.frame, suite, dataset.name)
    checks = run_checks(dataset, limits.get("checks"))
    drift_limits = limits.get("drift") or {}
    drift = []
    if reference is not None and reference.get("data_hash") != dataset.data_hash:
        drift = compare(reference, dataset, drift_limits)
    warn_on_drift = drift_limits.get("action", "fail") == "warn"
    report.checks = [c.as_dict() for c in checks + drift]
    report.evaluated += len(checks) + len(drift)
    report.failures += [f"{c.name}: {c.message}" for c in checks if not c.success]
    drift_failures = [f"{c.name}: {c.message}" for c in drift if not c.success]
    if warn_on_drift:
        report.warnings += drift_failures
    else:
        report.failures += drift_failures
    report.warnings += dataset.read_notes
    report.success = not report.failures
    report.warn_only = warn_only and not report.success
    return report


def _validation_cache_key(context, inputs: dict) -> str:
    from tasks.caching import validation_key

    dataset = inputs["dataset"]
    suite_path = get_settings().expectation_suite_path(dataset.name)
    return validation_key(dataset, suite_path, inputs.get("limits"), inputs.get("reference"), inputs.get("warn_only"))


# Cached on the data version, the suite, the limits, the champion's data and the validation code
# (tasks/caching.py). A failed validation raises, so it is never cached.
@task(name="validate_dataset", cache_key_fn=_validation_cache_key, persist_result=True)
def validate_dataset(
    dataset: "Dataset",
    out_dir: Path,
    limits: dict | None = None,
    reference: dict | None = None,
    warn_only: bool = False,
) -> ValidationReport:
    """Validate and keep the reports: JSON and Data Docs in out_dir, a markdown artifact in
    Prefect. Raise ValidationFailed (which fails the flow run) unless warn_only."""
    from prefect.artifacts import create_markdown_artifact

    report = check_dataset(dataset, limits, reference, warn_only)
    report_path = report.write(out_dir / "validation.json")
    docs_path = report.write_data_docs(out_dir / "data_docs.html")
    create_markdown_artifact(
        key=f"validation-{artifact_key(dataset.name)}",
        markdown=report.markdown() + f"\n\nReport: `{report_path}`; Data Docs: `{docs_path}`",
        description=report.summary()[:500],
    )
    logger = _logger()
    for warning in report.warnings:
        logger.warning("validation warning: %s", warning)
    if not report.success:
        if not warn_only:
            raise ValidationFailed(f"validation failed for {report.summary()} (report: {report_path})")
        logger.warning("validation failed, going on (--warn-only): %s", report.summary())
    report.gx_result = None  # rendered already; GX's objects need not be kept in the cache
    return report


def artifact_key(name: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "dataset"


def _logger():
    """The task run's logger; a plain one when called outside a run (scripts, tests)."""
    import logging

    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("mlpipe.validation")
