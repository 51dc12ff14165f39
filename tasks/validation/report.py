"""A validation's verdict: what passed and failed, as JSON, Data Docs and markdown for people."""

import json
from dataclasses import dataclass, field
from pathlib import Path

from tasks.infra.files import write_atomic


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
    docs_html: str | None = field(default=None, repr=False)  # the page itself, so a cached report can write it again

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
        document = {"summary": self.summary(), "checks": self.checks, "warnings": self.warnings, **self.result}
        write_atomic(path, json.dumps(document, indent=2, default=str))
        self.report_path = path
        return path

    def write_data_docs(self, path: Path) -> Path:
        """The Data Docs page for this validation, with mlpipe's checks: one self-contained HTML file."""
        from tasks.validation.data_docs import render

        self.docs_html = self.docs_html or render(self)  # GX's result is gone from a cached report
        write_atomic(path, self.docs_html)
        self.docs_path = path
        return path

    def restore(self, out_dir: Path) -> None:
        """Write the files again in out_dir where they are missing: a report read from the cache
        points at the disk of the machine (or the outputs/ folder, since cleaned) that made it."""
        if self.report_path is not None and not self.report_path.exists():
            self.write(out_dir / self.report_path.name)
        if self.docs_path is not None and not self.docs_path.exists() and self.docs_html is not None:
            self.write_data_docs(out_dir / self.docs_path.name)

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
