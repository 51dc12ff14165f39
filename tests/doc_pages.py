"""The documentation's pages as the tests run them: each tutorial and how-to guide is read into its
steps (the shell blocks to run, the files to write, the output to expect) and followed in order in
a fresh project, as a reader would.

A page says how long it takes in its front matter (`test: fast`, run by `make test`; `test: slow`,
by `make test-slow`). In a page:

- a `bash` block runs in a shell whose working directory and exported variables carry over to the
  next block, like one terminal; it must exit 0;
- a block titled `Output` right after a `bash` block lists lines its output must hold, in order;
  `...` in a line matches anything, a line of `...` alone stands for lines left out;
- a block titled with a file's path (`title="sms.yaml"`) is written to that path before the next step;
- an HTML comment right before a `bash` block changes how it runs (the reader does not see it):
  `<!-- docs-test: fails -->` (the block shows an error: it must exit non-zero) or
  `<!-- docs-test: background until "TEXT" -->` (a command that runs until stopped, such as
  `mlpipe serve`: started, waited on until its output holds TEXT, stopped when the page ends).
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

CODE = Path(__file__).resolve().parents[1]
DOCS = CODE / "docs"
SHELLS = ("bash", "sh", "shell")
FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<lang>[\w-]*)(?P<attrs>[^\n]*)\n(?P<body>.*?)\n(?P=indent)```[ \t]*$", re.M | re.S
)
TITLE = re.compile(r'title="([^"]+)"')
DIRECTIVE = re.compile(r"<!--\s*docs-test:\s*(?P<what>.*?)\s*-->\s*$")
BACKGROUND = re.compile(r'background until "(?P<ready>[^"]+)"')
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
FILE_TITLE = re.compile(r"^[\w./-]+\.\w+$")


@dataclass
class Step:
    kind: str  # "run", "write" or "expect"
    text: str
    path: str = ""  # the file a "write" step writes
    fails: bool = False  # a "run" step that must exit non-zero
    ready: str = ""  # a background "run" step: the output that says it is ready
    line: int = 0  # where the block starts in the page, for the failure message


def front_matter(page: Path) -> dict:
    text = page.read_text()
    if not text.startswith("---\n"):
        return {}
    return yaml.safe_load(text[4 : text.index("\n---", 4)]) or {}


def steps_of(page: Path) -> list[Step]:
    text = page.read_text()
    steps: list[Step] = []
    for block in FENCE.finditer(text):
        lang, attrs = block["lang"], block["attrs"]
        body = "\n".join(line.removeprefix(block["indent"]) for line in block["body"].splitlines())
        title = (TITLE.search(attrs) or [None, ""])[1]
        line = text.count("\n", 0, block.start()) + 1
        before = text[: block.start()].rstrip().splitlines()
        directive = DIRECTIVE.search(before[-1]) if before else None
        if lang in SHELLS:
            what = directive["what"] if directive else ""
            ready = BACKGROUND.search(what)
            steps.append(Step("run", body, fails=what == "fails", ready=ready["ready"] if ready else "", line=line))
        elif title == "Output":
            if not steps or steps[-1].kind != "run" or steps[-1].ready:
                raise AssertionError(f"{page.name}:{line}: an Output block must follow a bash block that ends")
            steps.append(Step("expect", body, line=line))
        elif FILE_TITLE.match(title):
            steps.append(Step("write", body + "\n", path=title, line=line))
    return steps


def fresh_project(tmp: Path, shared: Path) -> tuple[Path, dict[str, str]]:
    """A copy of this checkout's files as a fresh clone has them (a git repository of its own), with
    ../shared beside it and the test's virtual environment as its .venv; and a newcomer's
    environment with a home of its own."""
    project, home = tmp / "mlpipe", tmp / "home"
    home.mkdir()
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=CODE, capture_output=True, check=True).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if (CODE / name).is_file():
            (project / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(CODE / name, project / name)
    (project / ".venv").symlink_to(Path(sys.prefix))
    (tmp / "shared").symlink_to(shared)
    env = newcomer_environment(home)
    for command in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "A fresh clone"]):
        subprocess.run(command, cwd=project, env=env, check=True)
    return project, env


def newcomer_environment(home: Path | None = None) -> dict[str, str]:
    """The environment a newcomer's shell has: no store, server or project of the tests', no
    network for Hugging Face, and `home` for HOME where given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLPIPE_", "PREFECT_", "MLFLOW_", "AWS_"))}
    env |= {"HOME": str(home)} if home else {}
    env |= {"GIT_AUTHOR_NAME": "Docs", "GIT_AUTHOR_EMAIL": "docs@example.com", "CI": "true", "COLUMNS": "100"}
    env |= {"GIT_COMMITTER_NAME": "Docs", "GIT_COMMITTER_EMAIL": "docs@example.com"}
    return env | {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "HF_HUB_OFFLINE": "1"}


class Terminal:
    """One shell session over many blocks: each block runs in its own bash, started in the working
    directory and with the exported variables the last block left."""

    def __init__(self, project: Path, env: dict[str, str], page: str):
        self.project, self.cwd, self.env, self.page = project, project, env, page
        self.state = project.parent / "shell-state"
        self.background: list[subprocess.Popen] = []
        self.last_output = ""

    def _script(self, text: str) -> str:
        save = f"env -0 > {self.state}.env; pwd > {self.state}.cwd"
        return f"set -eo pipefail\n{text}\n{save}\n"

    def run(self, step: Step, timeout: float) -> None:
        if step.ready:
            return self._start(step, timeout)
        where = f"{self.page}:{step.line}: `{step.text.splitlines()[0]}`"
        process = subprocess.Popen(
            ["bash", "-c", self._script(step.text)], cwd=self.cwd, env=self.env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the block and everything it started
            output, _ = process.communicate()
            raise AssertionError(f"{where} still ran after {timeout} s:\n{clean(output)[-3000:]}") from None
        self.last_output = clean(output)
        if step.fails:
            assert process.returncode != 0, f"{where} should fail and exited 0:\n{self.last_output[-3000:]}"
            return
        assert process.returncode == 0, f"{where} exited {process.returncode}:\n{self.last_output[-3000:]}"
        self._load_state()

    def _start(self, step: Step, timeout: float) -> None:
        log = self.state.with_suffix(f".bg{len(self.background)}")
        with log.open("w") as out:
            process = subprocess.Popen(
                ["bash", "-c", step.text], cwd=self.cwd, env=self.env, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.background.append(process)
        deadline = time.monotonic() + timeout
        while step.ready not in clean(log.read_text()):
            assert process.poll() is None, (
                f"{self.page}:{step.line}: ended before it said {step.ready!r}:\n{log.read_text()[-3000:]}"
            )
            assert time.monotonic() < deadline, f"{self.page}:{step.line}: no {step.ready!r} in {timeout} s"
            time.sleep(1)

    def _load_state(self) -> None:
        """The next block starts where this one ended: its folder and its exported variables, those it
        unset gone."""
        self.cwd = Path(Path(f"{self.state}.cwd").read_text().strip())
        exported = Path(f"{self.state}.env").read_bytes().decode()
        self.env = dict(item.split("=", 1) for item in exported.split("\0") if "=" in item)
        for shell_own in ("SHLVL", "_", "PWD", "OLDPWD"):
            self.env.pop(shell_own, None)

    def take(self, step: Step, timeout: float) -> None:
        """One step of a page: run a block, write a file, or check the last block's output."""
        if step.kind == "run":
            self.run(step, timeout)
        elif step.kind == "write":
            self.write(step)
        else:
            expect(self.last_output, step.text, f"{self.page}:{step.line}")

    def write(self, step: Step) -> None:
        path = self.cwd / step.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(step.text)

    def stop(self) -> None:
        for process in self.background:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
        for process in self.background:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        for record in self.project.parent.glob("*/.prefect/server.json"):  # the project's, and a clone's
            folder = record.parents[1]
            subprocess.run([".venv/bin/mlpipe", "down"], cwd=folder, env=self.env, capture_output=True, timeout=120)


def clean(output: str) -> str:
    """What a reader sees: no colour codes, a progress line's last state only."""
    return "\n".join(line.split("\r")[-1] for line in ANSI.sub("", output).splitlines())


def expect(output: str, shown: str, where: str) -> None:
    """Each shown line appears in the output, in order; `...` matches anything."""
    lines, at = output.splitlines(), 0
    for wanted in filter(None, (line.strip() for line in shown.splitlines())):
        if wanted == "...":
            continue
        pattern = re.compile(".*".join(re.escape(part) for part in wanted.split("...")))
        while at < len(lines) and not pattern.search(lines[at]):
            at += 1
        assert at < len(lines), f"{where}: the output has no line like {wanted!r}; it was:\n{output[-3000:]}"
        at += 1


def follow(page: Path, tmp: Path, shared: Path, timeout: float = 900) -> None:
    """Every step of the page in order, in a fresh project."""
    project, env = fresh_project(tmp, shared)
    terminal = Terminal(project, env, page.relative_to(DOCS).as_posix() if page.is_relative_to(DOCS) else page.name)
    try:
        for step in steps_of(page):
            terminal.take(step, timeout)
    finally:
        terminal.stop()
