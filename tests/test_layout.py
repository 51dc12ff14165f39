"""The layout holds: imports go flows -> tasks -> models without cycles, stage logic imports no
Prefect (only each stage's tasks.py does), and no module grows past what one reads in a sitting."""

import ast
import subprocess
import sys

from tasks.infra.settings import CODE_ROOT

PACKAGES = ("flows", "tasks", "models")
MAX_LINES = 250


def _modules() -> dict[str, ast.Module]:
    found = {}
    for package in PACKAGES:
        for path in sorted((CODE_ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(CODE_ROOT).with_suffix("").parts).removesuffix(".__init__")
            found[name] = ast.parse(path.read_text())
    return found


def _imports(tree: ast.Module, modules: dict) -> set[str]:
    """First-party modules imported anywhere in the file (inside functions too)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
    return {n for n in names if n in modules}


def test_imports_go_down_the_layers_without_a_cycle():
    modules = _modules()
    graph = {name: _imports(tree, modules) - {name} for name, tree in modules.items()}
    rank = {"flows": 0, "tasks": 1, "models": 2}
    upward = [(a, b) for a, targets in graph.items() for b in targets if rank[b.split(".")[0]] < rank[a.split(".")[0]]]
    assert upward == []

    def cycle_from(start, path, seen):
        for target in graph[start]:
            if target in path:
                return [*path[path.index(target) :], target]
            if target not in seen:
                seen.add(target)
                if found := cycle_from(target, [*path, target], seen):
                    return found
        return None

    seen: set[str] = set()
    cycles = [c for name in graph if (c := cycle_from(name, [name], seen))]
    assert cycles == []


def test_a_stage_imports_only_the_stages_before_it():
    """types and infra, then data, validation, training, evaluation, registry, tuning, compression, pretraining,
    monitoring."""
    modules = _modules()
    stages = ("data", "validation", "training", "evaluation", "registry", "tuning", "compression", "pretraining")
    order = (*stages, "monitoring")
    rank = {"types": 0, "infra": 0} | {name: index + 1 for index, name in enumerate(order)}
    stage = {name: rank[name.split(".")[1]] for name in modules if name.count(".") >= 1 and name.startswith("tasks.")}
    later = [
        (name, target)
        for name, tree in modules.items()
        if name in stage
        for target in _imports(tree, modules)
        if target in stage and stage[target] > stage[name]
    ]
    assert later == []


def test_stage_logic_imports_no_prefect():
    """Every module under tasks/ but the stages' tasks.py, imported in a fresh interpreter."""
    pure = [name for name in _modules() if name.startswith("tasks") and not name.endswith(".tasks")]
    pure.remove("tasks.registry.serving_worker")  # a script run by path in its own interpreter
    pure.remove("tasks.registry.pyfunc_model")  # MLflow's model file, loaded by MLflow
    pure.remove("tasks.pretraining.encoder_model")  # the same, for the pretrained encoders
    pure.remove("tasks.infra.result_blocks")  # Prefect's result storage blocks: subclasses of its file systems
    script = (
        "import importlib, sys\n"
        f"for name in {pure!r}:\n"
        "    importlib.import_module(name)\n"
        "    if 'prefect' in sys.modules:\n"
        "        sys.exit(name)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=CODE_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, f"importing {done.stderr.strip().splitlines()[-1]} imports Prefect"


def test_no_module_is_longer_than_one_sitting():
    long = {}
    for package in PACKAGES:
        for path in (CODE_ROOT / package).rglob("*.py"):
            if (lines := len(path.read_text().splitlines())) > MAX_LINES:
                long[str(path.relative_to(CODE_ROOT))] = lines
    assert long == {}


# Module names that repeat across packages, each on purpose: the same role in every stage.
SHARED_NAMES = {
    "tasks.py": "each stage's Prefect tasks (tasks/__init__.py): the one module of a stage that imports Prefect",
    "registering.py": "each stage's runs and registered versions in MLflow: registry (candidates), compression "
    "(@compact variants), pretraining (<name>-encoder)",
    "report.py": "what a stage's run reports to people: validation, tuning, pretraining",
    "caching.py": "a stage's cache key: validation, training",
}
MAX_FUNCTION_LINES = 60


def test_module_names_do_not_repeat_unless_they_play_one_role():
    seen: dict[str, list[str]] = {}
    for package in PACKAGES:
        for path in (CODE_ROOT / package).rglob("*.py"):
            if path.name != "__init__.py":
                seen.setdefault(path.name, []).append(str(path.relative_to(CODE_ROOT)))
    repeated = {name: sorted(paths) for name, paths in seen.items() if len(paths) > 1 and name not in SHARED_NAMES}
    assert repeated == {}


def test_no_function_in_flows_or_tasks_is_longer_than_60_lines():
    long = {}
    for package in ("flows", "tasks"):
        for path in (CODE_ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    if (lines := node.end_lineno - node.lineno + 1) > MAX_FUNCTION_LINES:
                        long[f"{path.relative_to(CODE_ROOT)}::{node.name}"] = lines
    assert long == {}


# The one module per dependency that may use its private parts; each says why in its docstring.
PRIVATE_API_MODULES = {
    "tasks/infra/prefect_private.py": "prefect",
    "tasks/registry/mlflow_private.py": "mlflow",
    "tasks/validation/data_docs.py": "great_expectations",  # its template names (no private attribute)
}
# Underscored names that are public by design: namedtuple's methods, the interpreter's exits, and
# the quantized kernels of torch (not a dependency this rule covers; models/quantized.py says why).
PUBLIC_UNDERSCORED = {"_replace", "_asdict", "_fields", "_exit", "_run_exitfuncs", "_weight_bias"}
PUBLIC_UNDERSCORED |= {"_make_per_tensor_quantized_tensor"}
DEPENDENCIES = ("prefect", "mlflow", "typer", "great_expectations", "lightning")


def _private_uses(tree: ast.Module) -> list[str]:
    """Private attributes (`x._name` on anything but self or cls), private modules or names imported
    from a dependency, MLflow's run-context internals, a dependency's module attribute replaced,
    and Prefect's double-underscore settings."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.endswith("__"):
            own = isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
            if node.attr not in PUBLIC_UNDERSCORED and not own:
                found.append(ast.unparse(node))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            names = [] if isinstance(node, ast.Import) else [a.name for a in node.names]
            for module in (m for m in modules if m.split(".")[0] in DEPENDENCIES):
                parts = module.split(".") + names
                if any(part.startswith("_") for part in parts) or module.startswith("mlflow.tracking.context"):
                    found.append(f"import of {module} {names or ''}".strip())
        elif isinstance(node, ast.Assign | ast.AugAssign):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if isinstance(target, ast.Attribute) and ast.unparse(target).split(".")[0] in DEPENDENCIES:
                    found.append(f"{ast.unparse(target)} replaced")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("PREFECT__"):
            found.append(node.value)
    return found


def test_private_parts_of_dependencies_are_used_in_one_module_each():
    uses = {}
    for package in PACKAGES:
        for path in (CODE_ROOT / package).rglob("*.py"):
            relative = str(path.relative_to(CODE_ROOT))
            if relative not in PRIVATE_API_MODULES and (found := _private_uses(ast.parse(path.read_text()))):
                uses[relative] = found
    assert uses == {}
    for relative in PRIVATE_API_MODULES:
        assert "private" in (ast.get_docstring(ast.parse((CODE_ROOT / relative).read_text())) or ""), relative
