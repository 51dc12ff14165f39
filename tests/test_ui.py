"""The UIs people use, in headless Chromium (Debian's, driven by Playwright): the deployment's
parameter form in the Prefect UI and the registered model's @champion in the MLflow UI.
Screenshots are kept in outputs/screenshots/."""

import re
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import free_port
from prefect_runs import wait_for_deployment

from tasks.infra.settings import CODE_ROOT, Settings

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = CODE_ROOT / "outputs" / "screenshots"
# There is no network here: without these flags Chromium keeps trying to reach Google's hosts.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
FORM_FIELDS = ("Dataset", "Models", "Max Epochs", "Batch Size", "Learning Rate", "Seed", "Min Delta", "Devices")


@contextmanager
def chromium_page():
    """A page in headless Chromium. Opened after the test's own setup: Playwright's sync API keeps
    an event loop running in this thread, under which Prefect's calls would turn asynchronous."""
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed: `apt-get install chromium` (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1000})
        finally:
            browser.close()


def test_the_prefect_ui_shows_the_training_form(prefect_api):
    from playwright.sync_api import expect

    from flows.deployments import build_deployments

    for deployment in build_deployments({"digits": "0 3 * * *"}):
        deployment.apply()
    deployment = wait_for_deployment("training_pipeline/train")

    with chromium_page() as page:
        page.goto(f"{prefect_api.removesuffix('/api')}/deployments/deployment/{deployment.id}/run")

        for field in FORM_FIELDS:
            expect(page.get_by_text(f"{field} (Optional)", exact=True)).to_be_visible(timeout=60_000)
        expect(page.get_by_text("Model families to train (the scikit-learn baseline joins")).to_be_visible()
        page.screenshot(path=SCREENSHOTS / "prefect-training-form.png", full_page=True)


def test_the_mlflow_ui_shows_the_champion(prefect_api, workspace):
    from playwright.sync_api import expect

    from flows.parameters import PipelineParams
    from flows.training import training_pipeline
    from tasks.infra.servers import launch, mlflow_server, stop

    training_pipeline(PipelineParams(dataset="digits", models=["cnn"], max_epochs=1))
    port = free_port()
    servers = launch([mlflow_server(Settings(root=workspace), port)], workspace / "logs")
    try:
        with chromium_page() as page:
            page.goto(f"http://127.0.0.1:{port}/#/models/digits")

            expect(page.get_by_text("Version 1", exact=True)).to_be_visible(timeout=60_000)
            expect(page.get_by_text(re.compile(r"^@\s*champion$"))).to_be_visible()
            page.screenshot(path=SCREENSHOTS / "mlflow-registered-model.png", full_page=True)
    finally:
        stop(servers)
