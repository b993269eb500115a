"""The rooms stay findable: no import circle among the project's modules, no handler module over 600 lines.

The import graph is read from the source (``ast``), never by importing: every ``import a.b`` and
``from a.b import c`` in every .py under the project's packages is an edge, relative imports
resolved against the importing module's package. ``from pkg import name`` points at the
submodule ``pkg.name`` when there is one, else at ``pkg/__init__.py``; that is how an
``__init__`` that builds its submodules while they import names back from it shows up.

Imports inside functions count too. Deferring an import hides a circle from the interpreter but
not from a reader: the two modules still need each other, neither can be understood or moved
alone, and the deferral is usually the trace of someone working around exactly this circle.
Imports under ``if TYPE_CHECKING:`` count for the same reason (mypy follows them).

The one edge *not* drawn is the implicit one from a submodule to its own package's
``__init__`` (Python runs ``bot/__init__.py`` before ``bot/web/app.py``): that is the language's
loading order, not a dependency anyone wrote.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "handlers", "cards", "storage", "appraisal", "sources")
HANDLER_LIMIT = 600

ALLOWED_CIRCLES: frozenset[frozenset[str]] = frozenset()

ALLOWED_LONG_HANDLERS: frozenset[str] = frozenset()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.relative_to(ROOT).parts:
                continue  # alembic loads these by path; nothing imports them
            found[module_name(path)] = path
    return found


def _resolve_relative(module: str, is_package: bool, level: int, target: str | None) -> str:
    base = module.split(".") if is_package else module.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, *([target] if target else [])])


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The project modules ``module`` imports anywhere in its file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    out: set[str] = set()

    def nearest(name: str) -> str | None:
        # ``import a.b.c`` where only ``a.b`` is ours (e.g. c is an attribute): the deepest known module
        parts = name.split(".")
        while parts:
            candidate = ".".join(parts)
            if candidate in known:
                return candidate
            parts.pop()
        return None

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                hit = nearest(alias.name)
                if hit:
                    out.add(hit)
        elif isinstance(node, ast.ImportFrom):
            base = (
                _resolve_relative(module, is_package, node.level, node.module)
                if node.level
                else (node.module or "")
            )
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in known:
                    out.add(sub)
                else:
                    hit = nearest(base)
                    if hit:
                        out.add(hit)
    out.discard(module)
    return out


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    return {name: imports_of(name, path, known) for name, path in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, list[str]]] = [(root, sorted(graph[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, pending = work[-1]
            if pending:
                nxt = pending.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(graph.get(nxt, ()))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _cycle_path(graph: dict[str, set[str]], component: list[str]) -> str:
    """One concrete loop through the component, to say where to cut: a -> b -> ... -> a."""
    members = set(component)
    start = component[0]
    previous: dict[str, str] = {}
    frontier = [start]
    seen = {start}
    while frontier:
        node = frontier.pop(0)
        for nxt in sorted(graph[node] & members):
            if nxt == start:
                path = [start]
                walk = node
                while walk != start:
                    path.append(walk)
                    walk = previous[walk]
                return " -> ".join([start, *reversed(path[1:]), start])
            if nxt not in seen:
                seen.add(nxt)
                previous[nxt] = node
                frontier.append(nxt)
    return " <-> ".join(component)


# -- the checker itself, on small graphs where the answer is known ---------------------------------


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": set()}, []),
        ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c"}, "e": {"a", "c"}}, [["a", "b"], ["c", "d"]]),
        ({"a": set()}, []),
    ],
)
def test_circles_finds_each_strongly_connected_group(
    graph: dict[str, set[str]], expected: list[list[str]]
) -> None:
    assert sorted(circles(graph)) == expected


@pytest.mark.parametrize(
    ("module", "is_package", "level", "target", "expected"),
    [
        ("bot.platforms.feishu", False, 1, "base", "bot.platforms.base"),
        ("bot.platforms", True, 1, "base", "bot.platforms.base"),
        ("bot.platforms.feishu", False, 2, "config", "bot.config"),
        ("bot.doctor.runner", False, 1, None, "bot.doctor"),
    ],
)
def test_relative_imports_resolve_against_the_package(
    module: str, is_package: bool, level: int, target: str | None, expected: str
) -> None:
    assert _resolve_relative(module, is_package, level, target) == expected


def test_edges_include_function_level_and_package_init_imports(tmp_path: Path) -> None:
    source = (
        "import pkg.sub\nfrom pkg import helper\nfrom . import sibling\n"
        "def f():\n    from pkg.deep import thing\n"
    )
    path = tmp_path / "mod.py"
    path.write_text(source)
    known = {"pkg", "pkg.sub", "pkg.deep", "pkg.mod", "pkg.sibling"}
    assert imports_of("pkg.mod", path, known) == {"pkg.sub", "pkg", "pkg.sibling", "pkg.deep"}


# -- the project -----------------------------------------------------------------------------------


def test_no_import_circle_among_the_projects_modules() -> None:
    graph = import_graph()
    left = [c for c in circles(graph) if frozenset(c) not in ALLOWED_CIRCLES]
    report = "\n".join(f"  {_cycle_path(graph, c)}   (all of: {', '.join(c)})" for c in left)
    assert not left, f"import circles (imports must point down):\n{report}"


def test_the_allow_list_names_only_circles_that_still_exist() -> None:
    present = {frozenset(c) for c in circles(import_graph())}
    assert ALLOWED_CIRCLES <= present, "an allowed circle is gone: drop it from ALLOWED_CIRCLES"


def test_no_handler_module_over_600_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in sorted((ROOT / "handlers").glob("*.py"))
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > HANDLER_LIMIT
    }
    over = {name: n for name, n in long.items() if name not in ALLOWED_LONG_HANDLERS}
    assert not over, f"handler modules over {HANDLER_LIMIT} lines (split by what a reader looks for): {over}"


def test_the_simulator_adapter_touches_no_table_like_the_real_adapters() -> None:
    """Its transcript is handed in as deps.transcript (storage/transcript.py, wired in bot/services.py)."""
    reached = import_graph()["bot.platforms.simulator"]
    assert sorted(m for m in reached if m.split(".")[0] == "storage") == []
