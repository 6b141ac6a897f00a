"""The package layout: no import cycle in the harness, the model imports nothing of the harness,
and the stage schema is stdlib only (the oracle venv imports it).

Every import statement counts, also those inside functions: a cycle held together
by function-local imports is still a cycle a reader has to untangle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import audiosr_model
import audiosr_verify

HARNESS = Path(audiosr_verify.__file__).resolve().parent
MODEL = Path(audiosr_model.__file__).resolve().parent


def _module_name(path: Path, root: Path, package: str) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = [package, *rel.parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(root: Path, package: str) -> dict[str, Path]:
    return {_module_name(p, root, package): p for p in sorted(root.rglob("*.py"))}


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """Modules of ``known`` that ``path`` (module ``name``) imports anywhere in its body."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                out.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = name.split(".") if is_pkg else name.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join(pkg + ([base] if base else []))
            out.add(base)
            for alias in node.names:  # "from pkg import module"
                out.add(f"{base}.{alias.name}")
    return {m for m in out if m in known and m != name}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_in_the_harness():
    modules = _modules(HARNESS, "audiosr_verify")
    graph = {name: _imports(path, name, set(modules)) for name, path in modules.items()}
    assert sum(len(v) for v in graph.values()) > 50, "the import graph was not read"
    assert _cycles(graph) == []


def test_cycle_detector_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_model_imports_nothing_of_the_harness():
    for name, path in _modules(MODEL, "audiosr_model").items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and not node.level:
                assert (node.module or "").split(".")[0] != "audiosr_verify", f"{name} imports the harness"
            if isinstance(node, ast.Import):
                assert all(a.name.split(".")[0] != "audiosr_verify" for a in node.names), name


def test_nothing_imports_the_generic_name_model():
    """A user's own model.py must never be imported in our place."""
    roots = [HARNESS, MODEL, HARNESS.parent / "tests", HARNESS.parent / "benchmarks", HARNESS.parent / "tools"]
    for root in roots:
        for path in root.rglob("*.py") if root.is_dir() else []:
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and not node.level:
                    assert (node.module or "").split(".")[0] != "model", f"{path}: from model ..."
                elif isinstance(node, ast.Import):
                    assert all(a.name.split(".")[0] != "model" for a in node.names), f"{path}: import model"
