"""Where a model came from: the code version that trained it, the Prefect flow run, the settings."""

import subprocess

from tasks.infra.fingerprints import digest
from tasks.infra.runs import flow_run_url
from tasks.infra.settings import CODE_ROOT


def run_lineage(flow_run_id: str, flow_run_name: str) -> dict[str, str]:
    """The code version and the Prefect flow run that made a model: tags on everything a flow registers."""
    return {
        **code_version(),
        "prefect_flow_run_id": flow_run_id,
        "prefect_flow_run_name": flow_run_name,
        "prefect_flow_run_url": flow_run_url(flow_run_id),
    }


def training_lineage(flow_run_id: str, flow_run_name: str, settings: list, tuned: dict) -> dict[str, str]:
    """A training run's lineage: its code and flow run, a hash of the settings its models depend on,
    the package versions, and where each family's tuned settings came from (`tuned`: family ->
    tasks/infra/tuned.py's Tuned; or that tuning kept params.yaml's)."""
    return {
        **run_lineage(flow_run_id, flow_run_name),
        "params_hash": digest(*settings)[:16],  # short: a tag people compare by eye
        "package_versions": package_versions(),
        **{f"tuning.{family}": entry.source() for family, entry in tuned.items()},
    }


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
