"""The UIs people use, in headless Chromium (Debian's, driven by Playwright): the deployment's
parameter form in the Prefect UI and the registered model's @champion in the MLflow UI.
Screenshots are written to docs/screenshots/, which the documentation site shows: a UI change shows in
git and on the site."""

import re
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import free_port, unavailable
from prefect_runs import artifacts_of, wait_for_deployment

from tasks.infra.settings import CODE_ROOT, Settings

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = CODE_ROOT / "docs" / "screenshots"  # the documentation site shows them: taken anew on every run
# There is no network here: without these flags Chromium keeps trying to reach Google's hosts.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
FORM_FIELDS = ("Dataset", "Models", "Max Epochs", "Batch Size", "Learning Rate", "Seed", "Min Delta", "Devices")


@contextmanager
def chromium_page():
    """A page in headless Chromium. Opened after the test's own setup: Playwright's sync API keeps
    an event loop running in this thread, under which Prefect's calls would turn asynchronous."""
    if not CHROMIUM.exists():
        unavailable("Chromium is not installed: `apt-get install chromium` (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1000})
        finally:
            browser.close()


def test_a_missing_browser_or_database_fails_in_ci_and_is_skipped_elsewhere(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"^Chromium is not installed \(CI=true: .* a failure"):
        unavailable("Chromium is not installed")
    for elsewhere in ("", "false"):
        monkeypatch.setenv("CI", elsewhere)
        with pytest.raises(pytest.skip.Exception, match="^PostgreSQL is not installed$"):
            unavailable("PostgreSQL is not installed")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        unavailable("PostgreSQL is not installed")


def test_the_prefect_ui_shows_the_training_form(prefect_api):
    from playwright.sync_api import expect

    from flows.deployments import build_deployments
    from tasks.infra.params import load_params
    from tasks.infra.settings import get_settings

    for deployment in build_deployments(load_params(get_settings()), {"digits": "0 3 * * *"}):
        deployment.apply()
    deployment = wait_for_deployment("training_pipeline/train")

    with chromium_page() as page:
        page.goto(f"{prefect_api.removesuffix('/api')}/deployments/deployment/{deployment.id}/run")

        for field in FORM_FIELDS:
            expect(page.get_by_text(f"{field} (Optional)", exact=True)).to_be_visible(timeout=60_000)
        expect(page.get_by_text("Model families to train (the scikit-learn baseline joins")).to_be_visible()
        expect(page.get_by_role("button", name="Known data set")).to_be_visible()  # a list to pick from
        page.screenshot(path=SCREENSHOTS / "prefect-training-form.png", full_page=True)


def _artifacts(flow_run_id) -> dict[str, str]:
    """key -> data of the artifacts a flow run left in the Prefect UI."""

    return {a.key: a.data for a in artifacts_of(flow_run_id) if a.key}


def test_the_links_mlpipe_stores_open_mlflows_classic_pages_with_the_champion(prefect_api, workspace, monkeypatch):
    """MLflow 3 opens an experiment in its GenAI view (traces, sessions) unless a link says the
    workflow is model training: every link in the run's artifacts lands on the classic pages."""
    from playwright.sync_api import expect

    from flows.inference import batch_inference
    from flows.training import training_pipeline
    from tasks.data.loading import load
    from tasks.infra.local_servers import launch, mlflow_server, stop
    from tasks.registry.links import CLASSIC, artifact_url

    port = free_port()
    monkeypatch.setenv("MLPIPE_MLFLOW_UI_URL", f"http://127.0.0.1:{port}")
    state = training_pipeline(dataset="digits", models=["cnn"], max_epochs=1, return_state=True)
    registration = state.result()
    artifacts = _artifacts(state.state_details.flow_run_id)
    # Prefect keeps a link artifact as the markdown `[text](link)`.
    found = {k: re.fullmatch(r"\[[^\]]*\]\((\S*)\)", v) for k, v in artifacts.items()}
    links = {k: match.group(1) for k, match in found.items() if match}
    assert set(links) == {"mlflow-run-digits", "mlflow-model-digits", "data-docs-digits"}
    board = artifacts["leaderboard-digits"]  # rounded, this run's candidates marked and linked
    assert board.count("**this run**") == 2 and board.count("?workflowType=machine_learning") == 2
    assert re.search(r"\| 0\.\d{4} \| 0\.\d{4} \| 0\.\d{4} \|", board)
    # A batch from another scanner (inverted pixels): its monitoring artifact and MLflow run.
    digits = load("digits", Settings(root=workspace))
    batch = digits.frame[digits.frame["label"].isin([0, 6])][digits.feature_columns]
    (workspace / "outputs").mkdir(exist_ok=True)
    (16 - batch).to_csv(workspace / "outputs" / "scanner.csv", index=False)
    scored = batch_inference("digits", "outputs/scanner.csv", "outputs/scanner-labelled.csv", return_state=True)
    monitored = scored.result()["monitoring"]
    (monitoring_artifact,) = artifacts_of(scored.state_details.flow_run_id)
    servers = launch([mlflow_server(Settings(root=workspace), port)], workspace / "logs")
    try:
        with chromium_page() as page:
            page.goto(f"{prefect_api.removesuffix('/api')}/artifacts/artifact/{monitoring_artifact.id}")
            expect(page.get_by_text("Drift detected").first).to_be_visible(timeout=60_000)
            page.screenshot(path=SCREENSHOTS / "prefect-monitoring-artifact.png", full_page=True)
            chart = artifact_url(f"http://127.0.0.1:{port}", "1", monitored["mlflow_run_id"], "class_mix.png")
            page.goto(chart)
            expect(page.get_by_text("monitor-v1").first).to_be_visible(timeout=60_000)
            page.wait_for_timeout(2000)  # the chart image loads after the page
            page.screenshot(path=SCREENSHOTS / "mlflow-monitoring-run.png", full_page=True)

            # The flow run's page in the Prefect UI: its name, and the artifacts people read.
            flow_run_page = f"{prefect_api.removesuffix('/api')}/runs/flow-run/{state.state_details.flow_run_id}"
            page.goto(flow_run_page)
            page.get_by_role("listitem").filter(has_text=re.compile(r"^Artifacts$")).click(timeout=60_000)
            expect(page.get_by_text("leaderboard-digits").first).to_be_visible(timeout=60_000)
            expect(page.get_by_text("data-docs-digits").first).to_be_visible()
            page.screenshot(path=SCREENSHOTS / "prefect-flow-run-artifacts.png", full_page=True)

            version_run = registration.candidate_run_ids[registration.best_family]
            page.goto(artifact_url(f"http://127.0.0.1:{port}", "1", version_run, "card/model_card.md"))
            expect(page.get_by_text("Model card: digits v1").first).to_be_visible(timeout=60_000)
            page.screenshot(path=SCREENSHOTS / "mlflow-model-card.png", full_page=True)

            page.goto(links["mlflow-model-digits"])
            expect(page.get_by_text("Version 1", exact=True)).to_be_visible(timeout=60_000)
            expect(page.get_by_text(re.compile(r"^@\s*champion$"))).to_be_visible()
            page.screenshot(path=SCREENSHOTS / "mlflow-registered-model.png", full_page=True)

            page.goto(links["mlflow-run-digits"])  # the pipeline run: named for what it is
            expect(page.get_by_text("Model metrics", exact=True)).to_be_visible(timeout=60_000)
            expect(page.get_by_text(re.compile(r"^digits-cnn-\d{4}-\d\d-\d\dT\d{4}$")).first).to_be_visible()
            page.screenshot(path=SCREENSHOTS / "mlflow-pipeline-run.png", full_page=True)

            page.goto(links["data-docs-digits"])  # self-contained: status icons and mlpipe's checks, offline
            docs = page.frame_locator("iframe").first
            expect(docs.get_by_text("mlpipe checks: rows, classes, leakage, drift")).to_be_visible(timeout=60_000)
            expect(docs.get_by_text("duplicates", exact=True)).to_be_visible()
            expect(docs.locator(".fa-check-circle").first).to_be_visible()  # drawn without Font Awesome's CDN
            page.screenshot(path=SCREENSHOTS / "mlflow-data-docs.png")

            # MLflow's compare view of the candidates: one metric scheme, the same columns for every family.
            runs = ",".join(f'"{run_id}"' for run_id in registration.candidate_run_ids.values())
            page.goto(f'http://127.0.0.1:{port}/#/compare-runs?runs=[{runs}]&experiments=["1"]&{CLASSIC}')
            expect(page.get_by_text("digits/cnn").first).to_be_visible(timeout=60_000)
            expect(page.get_by_text("val/accuracy").first).to_be_visible()
            page.screenshot(path=SCREENSHOTS / "mlflow-compare-candidates.png", full_page=True)

            page.goto(f"http://127.0.0.1:{port}/#/experiments/1?{CLASSIC}")  # the runs, their names and data set
            expect(page.get_by_text("Run Name", exact=True)).to_be_visible(timeout=60_000)
            expect(page.get_by_text(re.compile(r"^digits \([0-9a-f]{12}\)$")).first).to_be_visible()
            expect(page.get_by_text("Observability", exact=True)).to_have_count(0)  # the GenAI view's
            page.screenshot(path=SCREENSHOTS / "mlflow-experiment.png", full_page=True)
    finally:
        stop(servers)
    assert registration.version == "1"


def test_mlpipe_ups_prefect_ui_asks_for_the_projects_password_once(workspace):
    """The API takes calls with the project's password only; the UI asks for it, then works."""
    import os

    from mlpipe_up import Up
    from playwright.sync_api import expect

    up = Up({**os.environ, "MLPIPE_ROOT": str(workspace)})
    try:
        with chromium_page() as page:
            page.goto(f"http://127.0.0.1:{up.prefect_port}/dashboard")
            password = page.get_by_placeholder("admin:pass")
            expect(page.get_by_role("heading", name="Login")).to_be_visible(timeout=60_000)
            password.fill("mlpipe:wrong")
            page.keyboard.press("Enter")
            page.wait_for_timeout(3000)
            expect(password).to_be_visible()  # still asked
            password.fill(up.auth_string)
            page.keyboard.press("Enter")
            expect(page.get_by_text("Run a task or flow to get started")).to_be_visible(timeout=60_000)
            expect(password).to_have_count(0)
            page.reload()  # asked once: the browser keeps it
            expect(page.get_by_text("Run a task or flow to get started")).to_be_visible(timeout=60_000)
            expect(password).to_have_count(0)
            page.screenshot(path=SCREENSHOTS / "prefect-dashboard-after-login.png")
    finally:
        up.interrupt()
