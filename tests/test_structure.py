"""The package's shape: no import cycle between its modules, short sampler signatures."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import diffusion_notes.samplers as samplers

PKG = Path(__file__).resolve().parents[1] / "src" / "diffusion_notes"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def import_graph() -> dict[str, set[str]]:
    """module -> package modules it imports, at top level or inside functions (a lazy import
    still ties two modules together); imports under ``if TYPE_CHECKING`` are left out."""
    modules = {_module_name(p): p for p in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        deps: set[str] = set()
        for node in ast.walk(tree):
            if _type_checking_only(node, parents):
                continue
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # "from pkg import sub" imports the submodule when there is one
                targets = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
            else:
                continue
            for target in targets:
                if target in modules and target != name:
                    deps.add(target)
        graph[name] = deps
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                return stack[stack.index(d) :] + [d]
            if d not in state and (found := visit(d)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph()
    assert "diffusion_notes.train" in graph["diffusion_notes.cache"]  # the walk sees imports
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The checker can fail: the cache -> train edge plus a train -> cache edge is a cycle."""
    graph = import_graph()
    graph["diffusion_notes.train"] = graph["diffusion_notes.train"] | {"diffusion_notes.cache"}
    cycle = find_cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1]


def test_no_public_sampler_takes_more_than_ten_parameters() -> None:
    public = {n: getattr(samplers, n) for n in samplers.__all__}
    functions = {n: f for n, f in public.items() if n.startswith(("sample_", "ddim_invert"))}
    assert len(functions) >= 7
    too_long = {n: len(inspect.signature(f).parameters) for n, f in functions.items()}
    assert {n: k for n, k in too_long.items() if k > 10} == {}
    # and each takes the denoiser first
    assert all(next(iter(inspect.signature(f).parameters)) == "den" for f in functions.values())
