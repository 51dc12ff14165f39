"""The validation stage as a Prefect task."""

from pathlib import Path

from prefect import task

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
    """Validate and keep the reports: JSON and Data Docs in out_dir, a markdown artifact in
    Prefect. Raise ValidationFailed (which fails the flow run) unless warn_only."""
    from prefect.artifacts import create_markdown_artifact

    report = check_dataset(dataset, get_settings(), limits, reference, warn_only)
    report_path, docs_path = write_reports(report, out_dir)
    create_markdown_artifact(
        key=f"validation-{artifact_key(dataset.name)}",
        markdown=report.markdown() + f"\n\nReport: `{report_path}`; Data Docs: `{docs_path}`",
        description=report.summary()[:500],
    )
    logger = run_logger("mlpipe.validation")
    for warning in report.warnings:
        logger.warning("validation warning: %s", warning)
    if not report.success:
        if not warn_only:
            raise ValidationFailed(f"validation failed for {report.summary()} (report: {report_path})")
        logger.warning("validation failed, going on (--warn-only): %s", report.summary())
    report.gx_result = None  # rendered already; GX's objects need not be kept in the cache
    return report
