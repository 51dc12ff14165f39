"""The documentation site: it builds with --strict, every tutorial and how-to guide is followed as
written in a fresh project (tests/doc_pages.py: fast pages here, slow ones in `make test-slow`), the
reference names every environment variable the code reads, and the built site shows its pages'
headings and pictures in a browser."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SHARED_DATASETS, free_port
from doc_pages import DOCS, Step, Terminal, expect, follow, front_matter, steps_of

from tasks.infra.environment import VARIABLES

CODE = DOCS.parent
GUIDES = sorted([*DOCS.glob("tutorials/*.md"), *DOCS.glob("how-to/*.md")])


def _speed(page: Path) -> str:
    return front_matter(page).get("test", "")


def test_every_tutorial_and_guide_says_how_long_its_commands_take():
    assert GUIDES, "no tutorials or how-to guides found"
    unmarked = [page.name for page in GUIDES if _speed(page) not in ("fast", "slow")]
    assert not unmarked, f"pages without `test: fast` or `test: slow` in their front matter: {unmarked}"
    # A block runs under pipefail: `cmd | head` fails it (exit 141) whenever head leaves before cmd ends.
    early = [
        f"{p.name}: {line}" for p in GUIDES for s in steps_of(p) if s.kind == "run" for line in s.text.splitlines()
    ]
    assert not [line for line in early if re.search(r"\| *(head|grep -m|grep -q)\b", line)], "pipe into head"


def test_the_page_reader_finds_commands_files_and_output(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        '---\ntest: fast\n---\n# A page\n\n```yaml title="spec.yaml"\nname: x\n```\n\n'
        '```bash\ncat spec.yaml\n```\n\n```text title="Output"\nname: x\n```\n\n'
        '<!-- docs-test: fails -->\n```bash\nfalse\n```\n\n<!-- docs-test: background until "up" -->\n'
        "```bash\nsleep 100\n```\n\n```python\nprint('not run')\n```\n\n    ```bash\n    echo indented\n    ```\n"
    )
    steps = steps_of(page)
    assert [(s.kind, s.path, s.fails, s.ready) for s in steps] == [
        ("write", "spec.yaml", False, ""),
        ("run", "", False, ""),
        ("expect", "", False, ""),
        ("run", "", True, ""),
        ("run", "", False, "up"),
        ("run", "", False, ""),
    ]
    assert steps[-1].text == "echo indented"


def test_a_page_terminal_carries_the_folder_and_variables_and_checks_output(tmp_path):
    (tmp_path / "sub").mkdir()
    terminal = Terminal(tmp_path, {"PATH": os.environ["PATH"], "GONE": "1"}, "page.md")
    terminal.run(Step("run", "cd sub\nexport KEPT=yes\nunset GONE"), timeout=30)
    terminal.run(Step("run", 'echo "$KEPT ${GONE:-unset} $(basename $PWD)"'), timeout=30)
    assert terminal.last_output.strip() == "yes unset sub"
    with pytest.raises(AssertionError, match="no line like 'no'"):
        expect(terminal.last_output, "no", "page.md:1")
    with pytest.raises(AssertionError, match="exited 3"):
        terminal.run(Step("run", "exit 3"), timeout=30)
    terminal.run(Step("run", "exit 3", fails=True), timeout=30)
    with pytest.raises(AssertionError, match="should fail"):
        terminal.run(Step("run", "true", fails=True), timeout=30)
    with pytest.raises(AssertionError, match="still ran after 1 s"):
        terminal.run(Step("run", "sleep 60 & sleep 60"), timeout=1)  # the block and its children killed


@pytest.mark.parametrize(
    "page",
    [pytest.param(p, marks=[pytest.mark.slow] if _speed(p) == "slow" else [], id=p.stem) for p in GUIDES],
)
@pytest.mark.timeout(3600)
def test_a_page_runs_as_written(page, tmp_path):
    if not SHARED_DATASETS.exists():
        pytest.fail(f"the pages read ../shared/datasets, not found at {SHARED_DATASETS}")
    follow(page, tmp_path, SHARED_DATASETS.parent)


def test_the_readme_shows_only_commands_that_a_tested_page_runs():
    pages = "\n".join(step.text for page in GUIDES for step in steps_of(page) if step.kind == "run")
    readme = steps_of(CODE / "README.md")
    commands = [
        line.split("  #")[0].strip() for step in readme if step.kind == "run" for line in step.text.splitlines()
    ]
    untested = [c for c in commands if c and not c.startswith("make ") and c not in pages]
    assert commands and not untested, f"README commands that no tutorial or how-to runs: {untested}"


def test_the_environment_reference_names_every_variable_the_code_reads():
    read = set()
    sources = [*CODE.glob("flows/**/*.py"), *CODE.glob("tasks/**/*.py"), *CODE.glob("models/**/*.py")]
    for source in [s for s in sources if s.name != "environment.py"]:  # the declarations themselves
        text = source.read_text()
        # Read, not set: `environ.setdefault("X", ...)` and `environ["X"] = ...` hand a setting to a library.
        read |= set(re.findall(r"(?:environ\.get\(|environ\[|getenv\()\"([A-Z][A-Z0-9_]+)\"(?!\] =)", text))
        read |= set(re.findall(r"\"(MLPIPE_[A-Z0-9_]+)\"", text))
    assert read - set(VARIABLES) == set(), "read by the code, missing from tasks/infra/environment.py"
    mlpipe_own = {name for name, (owner, _) in VARIABLES.items() if owner == "mlpipe"}
    assert mlpipe_own - read == set(), "declared in tasks/infra/environment.py, read nowhere"


@pytest.fixture(scope="module")
def built_site(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(site)],
        cwd=CODE, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return site


def test_the_site_builds_with_generated_reference(built_site):
    cli = (built_site / "reference" / "cli" / "index.html").read_text()
    assert "mlpipe data add" in cli and "--max-epochs" in cli
    params = (built_site / "reference" / "params" / "index.html").read_text()
    assert "promotion.min_delta" in params and "families.&lt;modality&gt;.&lt;family&gt;.learning_rate" in params
    assert "MLPIPE_STORAGE_URL" in (built_site / "reference" / "environment" / "index.html").read_text()


def test_the_built_site_shows_its_headings_and_pictures(built_site):
    from test_ui import chromium_page

    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port := free_port()), "--bind", "127.0.0.1", "-d", str(built_site)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        with chromium_page() as page:
            for path, heading in (("quickstart/", "Quick start"), ("tutorials/text/", "Your own text data")):
                for _ in range(50):
                    try:
                        page.goto(f"http://127.0.0.1:{port}/{path}")
                        break
                    except Exception:  # the server is still starting
                        page.wait_for_timeout(200)
                assert page.locator("h1").first.inner_text().strip().rstrip("¶") == heading
                images = page.locator("article img")
                assert images.count() >= 1, f"{path} shows no picture"
                for i in range(images.count()):
                    image = images.nth(i)
                    image.scroll_into_view_if_needed()
                    loaded = image.evaluate("img => img.complete && img.naturalWidth > 0")
                    assert loaded, f"{path}: {image.get_attribute('src')} did not load"
    finally:
        server.terminate()
        server.wait()
