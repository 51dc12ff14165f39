"""Where a model came from: the code version that trained it."""

import subprocess

from tasks.infra.settings import CODE_ROOT


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


PACKAGES = ("torch", "lightning", "mlflow", "prefect", "great_expectations", "dvc", "pandas", "numpy")


def package_versions() -> str:
    """The versions that matter for reproducing a model, as one tag value."""
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for package in PACKAGES:
        try:
            found.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            continue
    return " ".join(found)


def params_hash(*sections: object) -> str:
    """A short hash of the settings a run used (params.yaml sections and the run's own choices)."""
    import hashlib
    import json

    text = json.dumps(sections, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
