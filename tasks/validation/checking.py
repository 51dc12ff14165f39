"""A data set's validation: its suite (or the default checks), the row-level checks and drift
from the champion's data, in one report."""

from pathlib import Path

from tasks.infra.params import ValidationParams
from tasks.infra.settings import Settings
from tasks.types import Dataset
from tasks.validation.drift import compare
from tasks.validation.expectations import default_suite, load_suite, run_suite
from tasks.validation.report import ValidationReport
from tasks.validation.row_checks import run_checks


def check_dataset(
    dataset: Dataset,
    settings: Settings,
    limits: ValidationParams | None = None,
    reference: dict | None = None,
    warn_only: bool = False,
) -> ValidationReport:
    """The data set's suite (or the default checks), the row-level checks and, given the profile
    of the champion's data, drift: one report."""
    limits = limits or ValidationParams()
    suite_path = settings.expectation_suite_path(dataset.name)
    suite = load_suite(suite_path) if suite_path.exists() else default_suite(dataset)
    report = run_suite(dataset.frame, suite, dataset.name)
    checks = run_checks(dataset, limits.checks)
    if dataset.modality == "audio":
        from tasks.validation.audio_checks import audio_checks

        checks += audio_checks(dataset, limits.checks)
    drift = []
    if reference is not None and reference.get("data_hash") != dataset.data_hash:
        drift = compare(reference, dataset, limits.drift)
    report.checks = [c.as_dict() for c in checks + drift]
    report.evaluated += len(checks) + len(drift)
    report.failures += [f"{c.name}: {c.message}" for c in checks if not c.success]
    drift_failures = [f"{c.name}: {c.message}" for c in drift if not c.success]
    if limits.drift.action == "warn":
        report.warnings += drift_failures
    else:
        report.failures += drift_failures
    report.warnings += dataset.read_notes
    report.success = not report.failures
    report.warn_only = warn_only and not report.success
    return report


def write_reports(report: ValidationReport, out_dir: Path) -> tuple[Path, Path]:
    """validation.json and the Data Docs page in out_dir: (report, docs)."""
    return report.write(out_dir / "validation.json"), report.write_data_docs(out_dir / "data_docs.html")


def validate_now(dataset: Dataset, settings: Settings, reference: dict | None) -> ValidationReport:
    """`mlpipe validate`: the checks a run would make (against `reference`, the profile of the
    champion's data), with the reports in outputs/<name>/validate-<time>/."""
    from datetime import datetime

    from tasks.infra.params import load_params

    limits = load_params(settings).validation
    report = check_dataset(dataset, settings, limits, reference)
    write_reports(report, settings.outputs_dir / dataset.name / f"validate-{datetime.now():%Y%m%dT%H%M%S}")
    return report


def init_suite(dataset: Dataset, settings: Settings, force: bool = False) -> tuple[Path, int]:
    """`mlpipe validate --init-suite`: a starting suite from the data, in expectations/<name>.json:
    (its path, how many expectations)."""
    from tasks.infra.errors import MlpipeError
    from tasks.validation.suites import build_suite, write_suite

    path = settings.root / "expectations" / f"{dataset.name}.json"
    if path.exists() and not force:
        raise MlpipeError(f"{path} exists: edit it, or pass --force to replace it")
    suite = build_suite(dataset)
    write_suite(suite, path)
    return path, len(suite["expectations"])
