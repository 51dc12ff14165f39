"""A validation's Data Docs page: Great Expectations' rendering of the expectations, beside
mlpipe's own row checks and drift, in one self-contained HTML file.

GX's page frame loads Bootstrap, Font Awesome, jQuery and Vega from CDNs: offline (and inside
MLflow's sandboxed artifact view) its status icons are blank. Here GX's sections are rendered into
a frame of our own, with GX's stylesheet and a few rules for the layout and the status icons, and
no script: the page shows the same wherever it is opened. The template names it includes are
private to GX (no public API renders its sections into another page): pyproject.toml pins GX's minor
version and tests/test_private_apis.py fails when they change.
"""

from html import escape

# The frame, in place of GX's page.j2; the sections are GX's own templates.
PAGE = """<!DOCTYPE html>
<html>
<head>
<meta charset="UTF-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>Validation of {{ mlpipe_dataset }}</title>
<style>{% include 'data_docs_default_styles.css' %}</style>
<style>{{ mlpipe_css }}</style>
</head>
<body>
{{ mlpipe_checks }}
{% for section in sections %}{% set section_loop = loop -%}{% include 'section.j2' %}{% endfor %}
</body>
</html>
"""

# What Bootstrap and Font Awesome gave the page, as far as a validation page uses them.
CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5rem 2rem; color: #212529; }
h1 { font-size: 1.5rem; } h2, h5 { font-size: 1.2rem; } h6, .h6 { font-size: 1rem; font-weight: 600; }
.row { display: flex; flex-wrap: wrap; gap: 0 1rem; }
.col-12 { flex: 0 0 100%; } .col-6 { flex: 1 1 40%; }
.alert { padding: .5rem 1rem; background: #eef0f2; border-radius: .25rem; margin: 1rem 0 .5rem; }
.alert h5, .alert h6 { margin: 0; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { border-top: 1px solid #dee2e6; padding: .3rem .6rem; text-align: left; vertical-align: top; }
.fas { font-style: normal; font-weight: bold; }
.fa-check-circle::before { content: "\\2714"; }
.fa-times::before, .fa-times-circle::before { content: "\\2718"; }
.fa-exclamation-triangle::before { content: "\\26A0"; }
.fa-question-circle::before { content: "?"; }
.text-success { color: #198754; } .text-danger { color: #dc3545; } .text-warning { color: #b58105; }
.passed { color: #198754; } .failed { color: #dc3545; }
code { background: #f3f3f3; padding: 0 .2rem; }
"""


def render(report) -> str:
    """The page for a ValidationReport whose GX result is still attached."""
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView
    from jinja2 import ChoiceLoader, DictLoader

    view = DefaultJinjaPageView()
    view.env.loader = ChoiceLoader([DictLoader({"mlpipe_page.j2": PAGE}), view.env.loader])
    page = ValidationResultsPageRenderer().render(report.gx_result)
    extra = {"mlpipe_dataset": escape(report.dataset), "mlpipe_css": CSS, "mlpipe_checks": checks_html(report)}
    return view.render(page, template="mlpipe_page.j2", **extra)


def checks_html(report) -> str:
    """The verdict, then mlpipe's checks across rows (duplicates, leakage, classes, ...) and drift
    as a table, and the warnings: what GX's own sections do not show."""
    verdict = f'<span class="{"passed" if report.success else "failed"}">{report.outcome}</span>'
    lines = [
        f"<h1>Validation of <code>{escape(report.dataset)}</code>: {verdict}</h1>",
        f"<p>{escape(report.summary())}</p>",
        '<div class="alert"><h5>mlpipe checks: rows, classes, leakage, drift</h5></div>',
        "<table><tr><th>status</th><th>check</th><th>observed</th></tr>",
    ]
    for check in report.checks:
        icon = "fa-check-circle text-success" if check["success"] else "fa-times text-danger"
        lines.append(
            f'<tr><td><i class="fas {icon}" title="{"passed" if check["success"] else "failed"}"></i></td>'
            f"<td>{escape(check['check'])}</td><td>{escape(str(check['message']))}</td></tr>"
        )
    lines.append("</table>")
    if report.warnings:
        lines += ["<h5>Warnings</h5><ul>", *(f"<li>{escape(w)}</li>" for w in report.warnings), "</ul>"]
    lines.append('<div class="alert"><h5>Great Expectations: the expectation suite</h5></div>')
    return "\n".join(lines)
