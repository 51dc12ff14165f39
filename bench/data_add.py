"""`mlpipe data add` of a folder of many small images (issue 7): the first add (read and check
every image, copy, hash with DVC, push to the remote), an unchanged add, and a changed one."""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import save

MLPIPE = str(Path(sys.executable).with_name("mlpipe"))
IMAGES = 10_000


def image_folder(root: Path) -> Path:
    """IMAGES 8x8 PNGs of scikit-learn's digits in class sub-folders."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    folder = root / "digits_png"
    for i in range(IMAGES):
        label = digits.target[i % len(digits.target)]
        pixels = (digits.images[i % len(digits.images)] * 15).astype(np.uint8)
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / str(label) / f"{i}.png")
    return folder


def timed_add(root: Path, folder: Path, env: dict) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [MLPIPE, "data", "add", str(folder), "--name", "pngs", "--modality", "image"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    return time.perf_counter() - started, done.stdout


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="mlpipe-bench-data-"))
    root = work / "project"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run([str(Path(sys.executable).with_name("dvc")), "init", "-q"], cwd=root, check=True)
    folder = image_folder(work)
    env = {**os.environ, "MLPIPE_ROOT": str(root), "MLPIPE_DVC_REMOTE": str(work / "remote")}

    first, _ = timed_add(root, folder, env)
    unchanged, out = timed_add(root, folder, env)
    assert "unchanged" in out, out
    from PIL import Image

    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "0" / "extra.png")
    changed, out = timed_add(root, folder, env)
    assert "replacing" in out, out
    rows = [
        {
            "figure": f"first `mlpipe data add` of {IMAGES:,} PNGs (read, check, copy, DVC, push)",
            "value": f"{first:.1f} s",
            "target": "",
            "met": None,
        },
        {"figure": "the same folder again (unchanged)", "value": f"{unchanged:.1f} s", "target": "", "met": None},
        {"figure": "one image added (a new version, pushed)", "value": f"{changed:.1f} s", "target": "", "met": None},
    ]
    save("data_add", "Adding a folder of many small images (issue 7)", rows, "One run each, fresh project.")


if __name__ == "__main__":
    main()
