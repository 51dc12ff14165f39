"""The Makefile's housekeeping, run by real make in a copy of the project."""

import shutil
import subprocess

from tasks.infra.settings import CODE_ROOT


def test_make_clean_deletes_caches_and_outputs_but_keeps_the_registry_and_the_data(tmp_path):
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(CODE_ROOT / name, tmp_path / name)
    kept = [tmp_path / "mlflow" / "mlflow.db", tmp_path / "mlflow" / "artifacts" / "1" / "model.pt"]
    kept += [tmp_path / "data" / "digits.yaml", tmp_path / ".venv" / "bin" / "python"]
    gone = [tmp_path / "outputs" / "cache" / "result.json", tmp_path / "tasks" / "__pycache__" / "x.pyc"]
    for path in kept + gone:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")

    subprocess.run(["make", "clean"], cwd=tmp_path, check=True, capture_output=True)

    assert [p for p in kept if not p.exists()] == []
    assert [p for p in gone if p.exists()] == []
