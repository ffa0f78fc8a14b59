"""The package's layers import one way, down, and no module imports itself through others.

The layers, bottom up (README "Architecture map"): the shared leaves (``lazy``,
``diagnostics``), ``sls`` (the protocol and the clients), ``settings`` (the TOML tables the
handlers and the daemon share), ``spool`` (storage), ``shipping``
(plans, retry, flushers), ``handlers`` (what the application logs through), ``ops`` (health
verdicts, metrics), ``daemon``, ``cli``. Beside them: ``emulator`` stands on ``sls`` only (it
is SLS, not a client of ours), ``testing`` (the users' pytest kit) on handlers and the
emulator. Every import counts, also one inside a function: a deferred import that dodges a
circle is still a circle. Only ``if TYPE_CHECKING:`` imports, which never run, are skipped.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import yai_spool

PACKAGE = Path(yai_spool.__file__).resolve().parent

#: layer -> rank; a module may import its own layer and the ranks below it.
RANK = {
    "leaf": 0,
    "sls": 1,
    "settings": 2,
    "spool": 3,
    "shipping": 4,
    "handlers": 5,
    "ops": 6,
    "daemon": 7,
    "cli": 8,
}
#: Layers outside the ladder, and exactly what each may import.
SIDE = {
    "emulator": {"leaf", "sls", "emulator"},
    "testing": {"leaf", "sls", "spool", "shipping", "handlers", "emulator", "testing"},
}
#: cli also starts the emulator (``yai-spool emulator``, ``yai-spool demo``).
EXTRA = {"cli": {"emulator"}}


def module_name(path: Path) -> str:
    parts = ["yai_spool", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "facade"
    return parts[1] if parts[1] in RANK or parts[1] in SIDE else "leaf"


def _runtime_imports(tree: ast.Module) -> Iterator[str]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        graph[name] = {
            target
            for target in _runtime_imports(tree)
            if target in modules and target != name and not name.startswith(target + ".")
        }
    return graph


def test_every_import_runs_down_the_layers() -> None:
    wrong = []
    for module, targets in import_graph().items():
        src = layer(module)
        if src == "facade":
            continue
        for target in targets:
            dst = layer(target)
            if src in SIDE:
                allowed = dst in SIDE[src]
            elif dst in SIDE:
                allowed = dst in EXTRA.get(src, set())
            else:
                allowed = dst != "facade" and RANK[dst] <= RANK[src]
            if not allowed:
                wrong.append(f"{module} ({src}) imports {target} ({dst})")
    assert wrong == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_itself_through_others() -> None:
    assert _cycles(import_graph()) == []


def test_the_checker_sees_a_circle_and_an_upward_import() -> None:
    """The two checks above can fail: a planted circle and a planted upward edge are found."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert layer("yai_spool.sls.client") == "sls"
    assert layer("yai_spool.diagnostics") == "leaf"
    assert RANK[layer("yai_spool.handlers.durable")] > RANK[layer("yai_spool.shipping.thread")]
