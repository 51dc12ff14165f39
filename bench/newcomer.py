"""How long a newcomer takes from the quick start to a registered model of their own data: a fresh
clone of this repository (committed state, ../shared beside it), `make run` as the quick start says
(the installation included), then every step of the text tutorial (docs/tutorials/text.md) as
written, through the same page reader the documentation tests use. Machine time only: reading the
two pages (about 1,400 words) adds some minutes.

    python bench/newcomer.py          # about 4 minutes on 2 cores; writes results/newcomer.json
"""

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, save

sys.path.insert(0, str(ROOT / "tests"))
from doc_pages import DOCS, Terminal, newcomer_environment, steps_of  # noqa: E402

SHARED = ROOT.parent / "shared"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "mlpipe"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        (Path(tmp) / "shared").symlink_to(SHARED)
        env = newcomer_environment()  # this machine's home: its pip configuration, its caches
        started = time.perf_counter()
        subprocess.run(["make", "run"], cwd=clone, env=env, check=True, capture_output=True)
        quick_start = time.perf_counter() - started
        terminal = Terminal(clone, env, "tutorials/text.md")
        registered = None
        try:
            for step in steps_of(DOCS / "tutorials" / "text.md"):
                terminal.take(step, timeout=900)
                if registered is None and "Registered model 'sms' version 1" in terminal.last_output:
                    registered = time.perf_counter() - started
        finally:
            terminal.stop()
        tutorial = time.perf_counter() - started
    rows = [
        {"figure": "`make run` in a fresh clone, the installation included", "value": f"{quick_start:.0f} s"},
        {"figure": "... then the text tutorial to sms version 1 @champion", "value": f"{registered:.0f} s"},
        {"figure": "... and to the end of the tutorial (predict, pyfunc)", "value": f"{tutorial:.0f} s"},
    ]
    for row in rows:
        row |= {"target": "", "met": None}
    save("newcomer", "From the quick start to a registered model of your own data", rows)


if __name__ == "__main__":
    main()
