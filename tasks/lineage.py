"""Where a model came from: the code version that trained it."""

import subprocess

from tasks.settings import CODE_ROOT


def code_version() -> dict[str, str]:
    """git_sha of mlpipe's checkout and git_dirty ("true" when tracked files have changes)."""
    try:
        sha = _git("rev-parse", "HEAD")
        dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return {"git_sha": "unknown", "git_dirty": "unknown"}
    return {"git_sha": sha, "git_dirty": str(dirty).lower()}


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(CODE_ROOT), *args], capture_output=True, text=True, check=True, timeout=10
    ).stdout.strip()
