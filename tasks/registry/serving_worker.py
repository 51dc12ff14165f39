"""A registered version loaded as a model server loads it, run as `python -I serving_worker.py`.

Not imported by mlpipe: the parent (tasks/registry/serving.py) starts it in a fresh process, outside the
project, so that the version runs its own registered code (code_paths), never the checkout's.
It makes its slow imports first, then answers JSON requests from stdin, one per line:

    {"tracking_uri": ..., "model_uri": ..., "rows_path": <a parquet file of raw rows, or null for
     the version's input example>,
     "packages": ["tasks", "flows", "models"], "check_requirements": true}

and writes one JSON line back: {"labels": [...]} or {"error": "...", "kinds": [the error's class names]}
(the parent decides from them whether another try may pass: tasks/infra/retrying.py).
"""

import ast
import importlib.machinery
import json
import re
import sys
import traceback
from importlib import metadata
from pathlib import Path

import mlflow
import pandas as pd
import torch  # noqa: F401 - the slowest import, made before the first request arrives


class OnlyTheModelsCode:
    """A meta path finder that lets the project's packages load from the model's code folder only."""

    def __init__(self, packages: list[str], code: Path):
        self.packages, self.code = set(packages), code

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] not in self.packages or path is not None:
            return None  # not ours, or a submodule of a package already found in the code folder
        spec = importlib.machinery.PathFinder.find_spec(name, [str(self.code)])
        if spec is None:
            raise ModuleNotFoundError(f"No module named {name!r} in the model's code (code_paths)", name=name)
        return spec


def unlisted_imports(model_dir: Path, sources: list[Path] | None = None) -> list[str]:
    """The modules that the model's code (`sources`: the files of it that serving ran; all of them
    when None) imports and that its pip requirements do not install."""
    listed = set()
    for line in (model_dir / "requirements.txt").read_text().splitlines():
        if match := re.match(r"\s*([A-Za-z0-9_.\-]+)", line):
            listed.add(_normal(match.group(1)))
    code = model_dir / "code"
    own = {p.stem for p in code.iterdir()} if code.exists() else set()
    providers = metadata.packages_distributions()
    missing = set()
    for source in sources if sources is not None else [*model_dir.glob("*.py"), *code.rglob("*.py")]:
        for node in ast.walk(ast.parse(source.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for top in {n.partition(".")[0] for n in names}:
                if top in sys.stdlib_module_names or top in own:
                    continue
                if not any(_normal(d) in listed for d in providers.get(top, [top])):
                    missing.add(top)
    return sorted(missing)


def _normal(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def answer(request: dict) -> dict:
    mlflow.set_tracking_uri(request["tracking_uri"])
    try:
        path = Path(mlflow.artifacts.download_artifacts(request["model_uri"]))
    except Exception as error:  # noqa: BLE001 - reported to the parent, which decides
        return {"error": f"{type(error).__name__}: {error}", "kinds": [kind.__name__ for kind in type(error).__mro__]}
    sys.meta_path.insert(0, OnlyTheModelsCode(request.get("packages", []), path / "code"))
    model = mlflow.pyfunc.load_model(str(path))
    if request.get("rows_path"):
        rows = pd.read_parquet(request["rows_path"])
    else:  # the rows the version was logged with
        from mlflow.models import Model

        rows = Model.load(str(path)).load_input_example(str(path))
    out = model.predict(rows)
    if request.get("check_requirements"):
        ran = [Path(m.__file__) for m in list(sys.modules.values()) if getattr(m, "__file__", None)]
        if missing := unlisted_imports(path, [f for f in ran if f.is_relative_to(path)]):
            return {"error": f"the model's code imports {', '.join(missing)}, not in its pip requirements"}
    return {"labels": out["label"].astype(str).tolist()}


def main() -> None:
    for line in sys.stdin:
        if not line.strip():
            return  # the parent has no request: exit
        try:
            reply = answer(json.loads(line))
        except Exception as error:  # noqa: BLE001 - the parent shows the last line
            traceback.print_exc(file=sys.stderr)
            reply = {"error": f"{type(error).__name__}: {error}"}  # the model's own failure: never transient
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
        return  # one version per process: two versions' code cannot share one interpreter


if __name__ == "__main__":
    main()
