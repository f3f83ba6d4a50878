"""The code stays typed (mypy strict, with the boto3 stubs), linted and formatted (ruff): part of the test run."""

from __future__ import annotations

import ast
import pathlib
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT


def tool(name: str) -> str:
    path = shutil.which(name, path=str(__import__("pathlib").Path(sys.executable).parent)) or shutil.which(name)
    assert path is not None, f"{name} is not installed (pip install -e '.[test]')"
    return path


@pytest.mark.parametrize(
    "command",
    [["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy"]],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_clean(command: list[str]) -> None:
    result = subprocess.run([tool(command[0]), *command[1:]], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


# The package's layers, from the ground up: a module imports from its own part or from parts below it, never from a
# part above or beside it. Parts on one line stand side by side: neither may import the other.
LAYERS = (
    ("__init__", "errors"),
    ("interrupts",),
    ("declared",),
    ("nix",),
    ("planning",),
    ("watching",),
    ("aws",),
    ("images",),
    ("backends",),
    ("schedules", "infra"),
    ("queueing",),
    ("cli",),
    ("__main__",),
)
PACKAGE = ROOT / "compute_on_aws"


def _module(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module(f): f for f in PACKAGE.rglob("*.py")}


def _imports(path: pathlib.Path) -> set[str]:
    """Every compute_on_aws module this file imports, at the top, inside functions or for type checking alike."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module in MODULES:
            found |= {
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module for a in node.names
            }
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in MODULES}
    return found


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_layers_import_downward_only() -> None:
    floor = {part: i for i, parts in enumerate(LAYERS) for part in parts}
    files = sorted(PACKAGE.rglob("*.py"))
    assert {_part(_module(f)) for f in files} <= set(floor), "a new part of the package: give it a place in LAYERS"
    wrong = []
    for path in files:
        own = _part(_module(path))
        for target in _imports(path):
            other = _part(target)
            if other != own and floor[other] >= floor[own]:
                wrong.append(f"{path.relative_to(ROOT)} imports {target} ({other} is not below {own})")
    assert wrong == []


def test_no_import_cycles() -> None:
    modules = MODULES
    edges = {m: {t for t in _imports(f) if t in modules and t != m} for m, f in modules.items()}
    # A package imports its own modules to hand them on (cli/__init__ registers the commands): not a cycle.
    edges = {
        m: {t for t in ts if not (t.startswith(m + ".") and modules[m].name == "__init__.py")}
        for m, ts in edges.items()
    }
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = 1
        for target in sorted(edges[module]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target] if target in path else [module, target]
            if target not in state and (cycle := visit(target, [*path, target])):
                return cycle
        state[module] = 2
        return None

    for module in sorted(modules):
        if module not in state:
            assert visit(module, [module]) is None, "an import cycle"


def test_no_function_above_complexity_c() -> None:
    """radon's cyclomatic complexity: C (11-20) at most; a function above it is split before it lands."""
    result = subprocess.run(
        [tool("radon"), "cc", "--min", "D", "--show-complexity", "compute_on_aws"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout == ""
