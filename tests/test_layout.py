"""The package's shape: no import circles, modules of readable size, a public API that holds."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dbench"
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """Every dbench module ``path`` imports: top level, inside functions, under TYPE_CHECKING."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            # "from dbench.x import y": y may be a submodule or a name in dbench.x
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        else:
            continue
        found.update(t for t in targets if t in known and t != name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(path, name, known) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circle_among_dbench_modules():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


#: The layers, lowest first (docs/ARCHITECTURE.md): a module may import its own layer and
#: those below it, never one above. Keys are module names or package prefixes.
LAYERS = [
    {"dbench.errors", "dbench.checks", "dbench.atomic", "dbench.paths", "dbench.progress",
     "dbench.contracts", "dbench.representation", "dbench.metric_spec", "dbench.docstrings",
     "dbench.version"},
    {"dbench.registry"},
    {"dbench.models", "dbench.datasets", "dbench.metrics"},
    # the contract kit sits beside the engine, which checks plugins with it before a run
    {"dbench.engine", "dbench.testing.dataset", "dbench.testing.model", "dbench.testing.metric",
     "dbench.testing.results", "dbench.testing.toy"},
    {"dbench.sweep", "dbench.reporting", "dbench.testing"},
    {"dbench.cli", "dbench.api", "dbench", "dbench.__main__"},
]  # fmt: skip


def layer_of(module: str) -> int:
    best, level = "", None
    for i, names in enumerate(LAYERS):
        for prefix in names:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
                best, level = prefix, i
    assert level is not None, f"{module} is in no layer: add it to LAYERS and ARCHITECTURE.md"
    return level


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{a} -> {b}"
        for a, targets in graph.items()
        for b in targets
        if layer_of(b) > layer_of(a)
    )


def test_the_layer_check_finds_an_upward_import():
    assert upward_imports({"dbench.metrics.mig": {"dbench.engine.run"}}) == [
        "dbench.metrics.mig -> dbench.engine.run"
    ]
    assert upward_imports({"dbench.engine.run": {"dbench.metrics.mig"}}) == []


def test_lower_layers_never_import_higher_ones():
    found = upward_imports(import_graph())
    assert not found, "upward imports: " + "; ".join(found)


def test_the_architecture_note_names_every_module():
    note = (PACKAGE.parent / "docs" / "ARCHITECTURE.md").read_text()
    missing = sorted(
        name
        for name, path in _modules().items()
        if path.name != "__init__.py" and path.stem not in note
    )
    assert not missing, f"modules missing from docs/ARCHITECTURE.md: {missing}"


def test_no_module_is_longer_than_the_limit():
    long = {
        name: n
        for name, path in _modules().items()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_no_docstring_points_outside_the_repository():
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        assert "DESIGN.md" not in text and "SPEC.md" not in text, path


_API_SCRIPT = """
import importlib, pkgutil, sys
import dbench
first = {name: getattr(dbench, name) for name in dbench.__all__}
assert "torch" not in sys.modules, "import dbench must not import torch"
if sys.argv[1] == "all":
    for info in pkgutil.walk_packages(dbench.__path__, "dbench."):
        if info.name == "dbench.__main__":
            continue  # running it runs the CLI
        importlib.import_module(info.name)
for name, value in first.items():
    again = getattr(dbench, name)
    assert again is value, (name, again)
    assert not isinstance(again, type(sys)), f"dbench.{name} became a module"
missing = set(dbench.__all__) - set(dir(dbench))
assert not missing, missing
print("ok")
"""


@pytest.mark.parametrize("imported", ["nothing", "all"])
def test_public_api_names_stay_what_they_name(imported):
    out = subprocess.run(
        [sys.executable, "-c", _API_SCRIPT, imported], capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_leaderboard_works_on_its_second_call(tmp_path):
    import dbench

    first = dbench.leaderboard(tmp_path)
    second = dbench.leaderboard(tmp_path)
    assert first.shape == second.shape
