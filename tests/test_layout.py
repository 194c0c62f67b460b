"""The layout's rules (DESIGN.md, "The layers"), checked on the source: no import
cycle between the package's modules, not even under ``TYPE_CHECKING``; no module
reads another's private names; each middleware depends on the shared modules only;
no module over about 400 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import middleware

PACKAGE = Path(middleware.__file__).parent
SHARED = {"wsgi", "http", "options", "proxy", "backends"}
# What sits above the middleware and may import them.
EDGE = {"__init__", "paste", "__main__", "compose", "testing"}
LIMIT = 420


def modules() -> dict[str, Path]:
    """Dotted names (``compress.coders``) of every module of the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        found[".".join(parts)] = path
    return found


def imports(name: str, path: Path) -> list[tuple[str, list[str]]]:
    """``(module, names)`` of each import of the package's own modules in *name*'s
    source, resolved to dotted names relative to the package."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name.split(".")[:-1] if path.name != "__init__.py" else name.split(".")
    if name == "__init__":
        package = []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, *(node.module or "").split(".")]).strip(".")
            elif (node.module or "").startswith("middleware"):
                target = (node.module or "").removeprefix("middleware").strip(".")
            else:
                continue
            found.append((target, [alias.name for alias in node.names]))
    return found


def top(name: str) -> str:
    return name.split(".")[0] if name else "__init__"


def test_no_module_is_over_about_400_lines() -> None:
    long = {
        name: len(path.read_text().splitlines())
        for name, path in modules().items()
        if len(path.read_text().splitlines()) > LIMIT
    }
    assert not long, long


def test_no_import_cycle_between_modules() -> None:
    graph: dict[str, set[str]] = {}
    found = modules()
    for name, path in found.items():
        edges = set()
        for target, names in imports(name, path):
            for candidate in (*(f"{target}.{n}" for n in names), target):
                if candidate in found:
                    edges.add(candidate)
                    break
                if f"{candidate}.__init__" in found:
                    edges.add(f"{candidate}.__init__")
                    break
        graph[name] = edges - {name}
    # A package's __init__ re-exporting its own modules is not a cycle of theirs.
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                cycle = trail[trail.index(nxt) :] + [nxt] if nxt in trail else [nxt]
                if not all(part.endswith("__init__") for part in cycle[:1]):
                    pytest.fail(f"import cycle: {' -> '.join(cycle)}")
            elif state.get(nxt) is None:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for node in graph:
        if state.get(node) is None:
            visit(node, [node])


def test_no_module_reads_another_modules_private_names() -> None:
    offences = []
    for name, path in modules().items():
        for target, names in imports(name, path):
            private = [n for n in names if n.startswith("_") and n != "__version__"]
            if private:
                source = target or "middleware"
                offences.append(f"{name} imports {private} from {source}")
    assert not offences, offences


def test_each_middleware_depends_on_the_shared_modules_only() -> None:
    offences = []
    for name, path in modules().items():
        owner = top(name)
        if owner in SHARED or owner in EDGE:
            continue
        for target, _names in imports(name, path):
            other = top(target)
            if other != owner and other not in SHARED:
                offences.append(f"{name} imports {target or 'middleware'}")
    assert not offences, offences


def test_the_shared_modules_depend_on_nothing_but_each_other() -> None:
    for name, path in modules().items():
        if top(name) in SHARED:
            for target, _names in imports(name, path):
                assert top(target) in SHARED, f"{name} imports {target}"
