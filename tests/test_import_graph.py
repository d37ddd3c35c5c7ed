"""The package's import graph has no cycle, the CLI and function-level imports included.

Built with `ast` from the source of every module (nothing is imported): each
`import x` / `from x import y` anywhere in a module, at any depth, is an edge
to the module it names (`from pkg import name` counts as `pkg.name` when that
is a module, else as `pkg`). Importing a submodule also runs its packages'
`__init__`; that is not counted as an edge, or every facade package would be
a cycle with its own modules. Imports under `if TYPE_CHECKING:` are not
counted either: they never run (annotations only).
"""

from __future__ import annotations

import ast
from pathlib import Path

import eventstore

ROOT = Path(eventstore.__file__).parent


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _resolve(module: str, path: Path, level: int, target: str | None) -> str:
    if level == 0:
        return target or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - (level - 1)]
    return ".".join([*base, target] if target else base)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of the tree, at any depth, but those under `if TYPE_CHECKING:`."""
    found: list[ast.AST] = []
    pending = [tree]
    while pending:
        node = pending.pop()
        found.append(node)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                pending.extend(child.orelse)
                continue
            pending.append(child)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, path, node.level, node.module)
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in modules else base)
            for target in targets:
                # `import a.b.c` names a.b.c; keep the longest prefix that is ours.
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def _path(graph: dict[str, set[str]], component: list[str]) -> str:
    """One concrete cycle through a component, for the failure message."""
    members = set(component)
    start = component[0]
    trail = [start]
    seen = {start}
    node = start
    while True:
        nxt = sorted(s for s in graph[node] if s in members)
        back = [s for s in nxt if s == start]
        if back and len(trail) > 1:
            return " -> ".join([*trail, start])
        fresh = [s for s in nxt if s not in seen]
        if not fresh:
            return " -> ".join([*trail, nxt[0] if nxt else "?"])
        node = fresh[0]
        trail.append(node)
        seen.add(node)


def test_the_graph_sees_every_module_and_their_imports() -> None:
    graph = import_graph()
    assert "eventstore.cli" in graph and "eventstore.backends.postgres.backend" in graph
    assert "eventstore.store.protocol" in graph["eventstore.backends.sqlite.backend"]
    # a function-level import counts: open() loads the evolution layer lazily
    assert "eventstore.evolution.recording" in graph["eventstore.opening"]


def test_type_checking_imports_do_not_count_but_function_level_ones_do() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import a\n"
        "def f():\n    import b\n"
    )
    names = {n.names[0].name for n in _runtime_nodes(tree) if isinstance(n, ast.Import)}
    assert names == {"b"}


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert _path(graph, ["a", "b", "c"]) == "a -> b -> c -> a"


def test_no_import_cycles() -> None:
    graph = import_graph()
    cycles = find_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(_path(graph, c) for c in cycles)


def test_the_store_imports_no_layer_that_uses_it() -> None:
    """store knows events, errors, codec and its own protocols; nothing above."""
    graph = import_graph()
    above = (
        "eventstore.evolution",
        "eventstore.backends",
        "eventstore.cli",
        "eventstore.opening",
        "eventstore.lifecycle",
        "eventstore.metrics",
        "eventstore.replay",
    )
    for name, targets in graph.items():
        if name.startswith("eventstore.store"):
            bad = sorted(t for t in targets if t.startswith(above))
            assert not bad, f"{name} imports {bad}"


def test_nothing_outside_store_and_backends_holds_a_backend() -> None:
    """No `.backend` attribute and no backend module outside the two layers that own them."""
    allowed = ("eventstore.store", "eventstore.backends", "eventstore.opening")
    graph = import_graph()
    for name, path in _modules().items():
        if name.startswith(allowed):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("backend", "_backend"):
                raise AssertionError(f"{name}:{node.lineno} touches .{node.attr}")
        for target in graph[name]:
            inside = target.startswith("eventstore.backends.")
            assert not inside, f"{name} imports {target}"


def test_the_viewer_goes_through_the_store_and_only_the_cli_opens_it() -> None:
    """ui/ (layer 6) reads through HistoryStore: it imports no backend, no
    opening, no CLI and no other use of the store; only the CLI imports it."""
    graph = import_graph()
    below = (
        "eventstore.events",
        "eventstore.errors",
        "eventstore.error_details",
        "eventstore.pairing",
        "eventstore.codec",
        "eventstore.store",
        "eventstore.ui",
    )
    viewer = {name: targets for name, targets in graph.items() if name.startswith("eventstore.ui")}
    assert "eventstore.ui.app" in viewer
    for name, targets in viewer.items():
        bad = sorted(t for t in targets if not t.startswith(below))
        assert not bad, f"{name} imports {bad}"
    for name, targets in graph.items():
        if not name.startswith(("eventstore.ui", "eventstore.cli")):
            bad = sorted(t for t in targets if t.startswith("eventstore.ui"))
            assert not bad, f"{name} imports the viewer: {bad}"


def test_the_pairing_rule_is_pure_beside_the_events_model() -> None:
    """eventstore.pairing (which event ends which) sits in the data layer: it
    imports the events model and nothing else of ours, so the viewer, the
    traces, the metrics and the CLI may all call it."""
    graph = import_graph()
    assert graph["eventstore.pairing"] == {"eventstore.events"}
    users = {name for name, targets in graph.items() if "eventstore.pairing" in targets}
    assert {"eventstore.ui.timeline", "eventstore.traces.spans", "eventstore.cli.describe"} <= users
