"""The validation stage as a Prefect task."""

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.infra.errors import ValidationFailed
from tasks.infra.params import ValidationParams
from tasks.infra.runs import artifact_key, run_logger
from tasks.infra.settings import get_settings
from tasks.types import Dataset
from tasks.validation.caching import validation_key
from tasks.validation.checking import check_dataset, write_reports
from tasks.validation.report import ValidationReport


def _validation_cache_key(context, inputs: dict) -> str:
    dataset = inputs["dataset"]
    suite_path = get_settings().expectation_suite_path(dataset.name)
    limits = inputs.get("limits") or ValidationParams()
    return validation_key(dataset, suite_path, limits, inputs.get("reference"), inputs.get("warn_only"))


# Cached on the data version, the suite, the limits, the champion's data and the validation code
# (tasks/validation/caching.py). A failed validation raises, so it is never cached.
@task(name="validate_dataset", cache_key_fn=_validation_cache_key, persist_result=True)
def validate_dataset(
    dataset: Dataset,
    out_dir: Path,
    limits: ValidationParams | None = None,
    reference: dict | None = None,
    warn_only: bool = False,
) -> ValidationReport:
    """Validate and keep the reports, JSON and Data Docs, in out_dir. Raise ValidationFailed (which
    fails the flow run) unless warn_only; a passed (or warn-only) report is shown by `publish_validation`."""
    report = check_dataset(dataset, get_settings(), limits, reference, warn_only)
    write_reports(report, out_dir)
    report.gx_result = None  # rendered already; GX's objects need not be kept in the cache
    if not report.success and not warn_only:
        _show(report)
        raise ValidationFailed(f"validation failed for {report.summary()} (report: {report.report_path})")
    return report


# Every run, a cached validation too: the run's page in the Prefect UI always shows its data's verdict.
@task(name="publish_validation", cache_policy=NO_CACHE)
def publish_validation(report: ValidationReport, out_dir: Path) -> ValidationReport:
    """The verdict as a markdown artifact in the Prefect UI, and its warnings in the run's log. A
    cached report whose files are not on this machine writes them in out_dir, for MLflow."""
    report.restore(out_dir)
    _show(report)
    if not report.success:
        run_logger("mlpipe.validation").warning("validation failed, going on (--warn-only): %s", report.summary())
    return report


def _show(report: ValidationReport) -> None:
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(
        key=f"validation-{artifact_key(report.dataset)}",
        markdown=report.markdown()
        + f"\n\nReport: `{report.report_path}`; Data Docs: `{report.docs_path}` (once the run is logged,"
        + f" also in MLflow: the `data-docs-{artifact_key(report.dataset)}` link)",
        description=report.summary()[:500],
    )
    logger = run_logger("mlpipe.validation")
    for warning in report.warnings:
        logger.warning("validation warning: %s", warning)
