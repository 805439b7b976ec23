"""The layout's rules, checked on the source: module size, no import circles (lazy imports
included), one place that builds trainers, and an engine that imports nothing above it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "lmbench"
#: A smell detector, not a reason to cut one concept across files: a module over the limit that
#: is one concept is listed in LONG_MODULES with its own limit and the reason.
MAX_MODULE_LINES = 400
#: module -> (its limit, why it is one concept).
LONG_MODULES: dict[str, tuple[int, str]] = {
    "lmbench.core.trainer": (
        490,
        "the LM loop: entry points, epochs (one cut short by the time limit is dropped), the "
        "damped step (accepted on the penalised objective, tested for convergence) and the "
        "per-epoch hook mini-batch LM overrides; "
        "engines, row sources, stopping, checkpoints, the regularisation and the geodesic "
        "correction already live beside it",
    ),
    "lmbench.core.system": (
        420,
        "the Gauss-Newton system: its three forms, each with one solve, the scalings and "
        "convergence measures they share, and the accumulator that builds them; the Gram "
        "kernels live in core.gram",
    ),
}
MAX_LIMITS_LINES = 500


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(name: str, path: Path) -> set[str]:
    """Every lmbench module ``path`` imports anywhere (top level or inside functions)."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from pkg import sub`` imports the submodule when one exists
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                       for a in node.names]
        else:
            continue
        found.update(t for t in targets if t in MODULES and t != name)
    return found


def import_cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    graph = {name: imported_modules(name, path) for name, path in MODULES.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for name in graph:
        if name not in index:
            visit(name)
    return cycles


def test_no_import_circles_between_modules():
    assert import_cycles() == []


def test_no_module_is_longer_than_the_limit():
    long = {name: n for name, path in MODULES.items()
            if (n := len(path.read_text().splitlines()))
            > LONG_MODULES.get(name, (MAX_MODULE_LINES, ""))[0]}
    assert long == {}


def private_imports() -> list[str]:
    """``from lmbench.x import _name`` anywhere in the package: one module leaning on another's
    internals (a sign that one concept is split across files)."""
    found = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lmbench"):
                found += [f"{name}: {node.module}.{alias.name}" for alias in node.names
                          if alias.name.startswith("_") and not alias.name.startswith("__")]
    return found


def test_no_module_imports_another_modules_private_names():
    assert private_imports() == []


def test_limits_holds_only_the_model_cli():
    lines = sum(len(p.read_text().splitlines()) for p in (PACKAGE / "limits").glob("*.py"))
    assert lines < MAX_LIMITS_LINES


def test_trainers_are_built_in_at_most_two_places_outside_the_engine():
    sites = [
        f"{name}:{node.lineno}"
        for name, path in MODULES.items()
        if not name.startswith(("lmbench.core", "lmbench.examples"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "LevenbergMarquardt"
    ]
    assert len(sites) <= 2, sites


@pytest.mark.parametrize("forbidden", ["hydra", "omegaconf", "mlflow", "lmbench.harness",
                                       "lmbench.tracking", "lmbench.baselines", "lmbench.data"])
def test_the_engine_imports_nothing_above_it(forbidden):
    offenders = []
    for name, path in MODULES.items():
        if not name.startswith("lmbench.core"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{name} imports {n}" for n in names if n.split(".")[0] == forbidden
                          or n.startswith(forbidden + ".") or n == forbidden]
    assert offenders == []
