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


# ---------------------------------------------------------------------------------------------- the model's layout
# model/ (installed as `audiosr_model`) in sub-packages: the maths (`nets`, `sampling`, `dsp`) and the segment
# pipeline on it import nothing of file I/O (`io`) or run-time instrumentation (`runtime`); instrumentation
# reaches the pipeline as a stage hook from the product layer (`long_audio`). The flat modules of earlier
# releases are thin re-export shims, kept for one release, that nothing in the repository imports.

MATHS = ("audiosr_model.nets", "audiosr_model.sampling", "audiosr_model.dsp")
ON_THE_MATHS = ("audiosr_model.pipeline", "audiosr_model.audio_channels")  # the pipeline: given its hook
LOWER_BOUND = ("audiosr_model.io", "audiosr_model.runtime")  # what the maths must not import
REPO = HARNESS.parent
MAX_LINES = 500  # above it, a module's docstring says which one concern justifies it


def _within(name: str, packages) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def _shims() -> dict[str, Path]:
    """The one-release shims: top-level modules of the model whose docstring says where they moved."""
    out = {}
    for path in sorted(MODEL.glob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        if doc.startswith("Moved to audiosr_model."):
            out[f"audiosr_model.{path.stem}"] = path
    return out


def _top_level_imports(path: Path, name: str, known: set[str]) -> set[str]:
    """Like `_imports`, but only the imports that run when the module is imported (not in functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    body = list(tree.body)
    stmts = []
    while body:
        node = body.pop(0)
        if isinstance(node, (ast.If, ast.Try)):
            body[:0] = node.body + node.orelse + getattr(node, "finalbody", []) + [
                s for h in getattr(node, "handlers", []) for s in h.body]
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            stmts.append(node)
    module = ast.Module(body=stmts, type_ignores=[])
    out: set[str] = set()
    for node in module.body:
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        else:
            base = node.module or ""
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in out if m in known and m != name}


def _model_graph(importer=None) -> dict[str, set[str]]:
    modules = _modules(MODEL, "audiosr_model")
    read = importer or _imports
    return {name: read(path, name, set(modules)) for name, path in modules.items()}


def test_the_model_is_in_sub_packages():
    packages = {p.name for p in MODEL.iterdir() if (p / "__init__.py").is_file()}
    assert {"nets", "sampling", "dsp", "weights", "io", "runtime"} <= packages
    flat = {f"audiosr_model.{p.stem}" for p in MODEL.glob("*.py") if p.stem != "__init__"} - set(_shims())
    # what stays on top: the package, its error type and configuration, the pipeline and the product
    assert flat == {"audiosr_model.errors", "audiosr_model.config", "audiosr_model.pipeline",
                    "audiosr_model.audio_channels", "audiosr_model.long_audio", "audiosr_model.audio_options"}, flat


def test_no_import_cycle_in_the_model():
    graph = _model_graph()
    assert sum(len(v) for v in graph.values()) > 50, "the import graph was not read"
    assert _cycles(graph) == []


def test_no_package_level_cycle_in_the_model():
    """Sub-packages taken whole (and the top-level modules each on its own): the layers form no loop."""
    def package(name: str) -> str:
        parts = name.split(".")
        return ".".join(parts[:2])

    graph: dict[str, set[str]] = {}
    for name, deps in _model_graph(_top_level_imports).items():
        graph.setdefault(package(name), set()).update(package(d) for d in deps if package(d) != package(name))
    assert _cycles(graph) == []


def test_the_maths_imports_nothing_of_io_or_runtime():
    """Directly, anywhere in the module (functions too), nor through what its import loads."""
    graph = _model_graph()
    for name, deps in graph.items():
        if _within(name, MATHS + ON_THE_MATHS):
            bad = sorted(d for d in deps if _within(d, LOWER_BOUND))
            assert not bad, f"{name} imports {bad}: instrumentation reaches it as a hook (pipeline.StageHook)"
    loaded = _model_graph(_top_level_imports)
    for start in [n for n in loaded if _within(n, MATHS + ON_THE_MATHS)]:
        seen, todo = set(), [start]
        while todo:
            m = todo.pop()
            if m not in seen:
                seen.add(m)
                todo.extend(loaded[m])
        bad = sorted(m for m in seen if _within(m, LOWER_BOUND) or m in _shims())
        assert not bad, f"importing {start} loads {bad}"


def test_the_maths_rule_is_read():
    """The rule above sees an import of io or runtime where there is one (it would pass on an empty graph)."""
    graph = _model_graph()
    assert "audiosr_model.runtime.stages" in graph["audiosr_model.long_audio"]
    assert {"audiosr_model.runtime.timings", "audiosr_model.runtime.memory"} <= graph["audiosr_model.runtime.stages"]
    assert any(_within(m, MATHS) for m in graph) and any(_within(m, ON_THE_MATHS) for m in graph)


def _imported_modules(path: Path) -> set[str]:
    """Every module an import statement of ``path`` names (``from a import b`` names ``a`` and ``a.b``)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


def _harness_shims() -> dict[str, Path]:
    """The harness's one-release shims (modules renamed or moved): docstring ``Moved to `audiosr_verify.…```."""
    out = {}
    for path in sorted(HARNESS.rglob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        if doc.startswith("Moved to `audiosr_verify."):
            out[".".join(path.relative_to(HARNESS.parent).with_suffix("").parts)] = path
    return out


def test_the_harness_shims_are_thin_and_name_a_real_module():
    shims = _harness_shims()
    assert {"audiosr_verify.report.model", "audiosr_verify.checks.precision", "audiosr_verify.subjects.precision",
            "audiosr_verify.report.spectrogram"} <= set(shims)
    for name, path in shims.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        target = (ast.get_docstring(tree) or "").split("`")[1]
        assert "kept for one release" in (ast.get_docstring(tree) or ""), name
        assert (HARNESS.parent / (target.replace(".", "/") + ".py")).is_file(), f"{name} names {target}"
        for node in tree.body[1:]:
            assert isinstance(node, ast.ImportFrom) and node.module == target, f"{name}: a shim only re-exports"


def test_the_shims_are_thin_and_say_where_their_module_went():
    shims = _shims()
    assert len(shims) >= 20, "the old flat modules are kept for one release"
    for name, path in shims.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        assert "kept for one release" in (ast.get_docstring(tree) or ""), name
        for node in tree.body[1:]:
            assert isinstance(node, ast.ImportFrom) and (node.module or "").startswith("audiosr_model."), (
                f"{name}: a shim only re-exports")
            assert f"audiosr_model.{node.module.split('.', 1)[1]}" not in shims, f"{name} re-exports a shim"


def test_nothing_in_the_repository_imports_a_shim():
    """The shims are for users outside; our own code, tests, tools and examples use the new paths."""
    shims = set(_shims()) | set(_harness_shims())
    shim_files = set(_shims().values()) | set(_harness_shims().values())
    roots = [MODEL, HARNESS, REPO / "tests", REPO / "benchmarks", REPO / "tools", REPO / "examples"]
    files = [p for root in roots if root.is_dir() for p in root.rglob("*.py")] + [REPO / "conftest.py"]
    for path in files:
        if not path.is_file() or path in shim_files:
            continue
        used = sorted(_imported_modules(path) & shims)
        assert not used, f"{path.relative_to(REPO)} imports {used}: use the new module"


def test_faults_and_golden_paths_name_real_modules():
    """Faults patch by module name, and only a real module's function is what the pipeline calls."""
    from audiosr_verify.golden.paths import PATHS
    from audiosr_verify.subjects.faults import FAULTS

    shims = set(_shims())
    for fault in FAULTS.values():
        for module, _attr, _make in fault.patches:
            assert module not in shims, f"fault {fault.name} patches the shim {module}"
    for path in PATHS.values():
        assert path.code.split(":")[0] not in shims, path.code


def test_model_modules_stay_small_or_say_why():
    for name, path in _modules(MODEL, "audiosr_model").items():
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > MAX_LINES:
            doc = ast.get_docstring(ast.parse(text)) or ""
            assert "One concern" in doc, f"{name}: {text.count(chr(10))} lines and no one concern in its docstring"


# Edges that ran back up the harness's layers (issue 24): each pinned once it was removed. The report is
# handed the property results as data (testing/property_run.py); the checks take the spectrogram numbers
# from compare/, not from the report; `evaluate` hands corpus.run the report's HTML writer, and the output
# directories live in util/output_dirs.py.
BACK_EDGES_REMOVED = {
    "audiosr_verify.report": ("audiosr_verify.testing",),
    "audiosr_verify.checks": ("audiosr_verify.report", "audiosr_verify.cli"),
    "audiosr_verify.corpus": ("audiosr_verify.report", "audiosr_verify.cli"),  # the HTML writer is handed in
    "audiosr_verify.subjects": ("audiosr_verify.checks",),  # manifests are read in oracle/manifests.py
    "audiosr_verify.oracle": ("audiosr_verify.report", "audiosr_verify.cli"),  # (checks: inference_weights still
    # compares a checkpoint's layout with checks.state_dict.compare_layout)
}


def test_no_import_runs_back_up_the_layers():
    modules = _modules(HARNESS, "audiosr_verify")
    graph = {name: _imports(path, name, set(modules)) for name, path in modules.items()}
    found = [f"{name} -> {dep}" for name, deps in graph.items() for low, highs in BACK_EDGES_REMOVED.items()
             if name == low or name.startswith(low + ".") for dep in deps
             if any(dep == h or dep.startswith(h + ".") for h in highs)]
    assert found == []


def test_the_back_edge_rule_is_read():
    graph_has = {name for name in _modules(HARNESS, "audiosr_verify")}
    assert {"audiosr_verify.report.sections", "audiosr_verify.testing.property_run", "audiosr_verify.checks.corpus",
            "audiosr_verify.corpus.run"} <= graph_has
    assert _imports(HARNESS / "cli" / "evaluate.py", "audiosr_verify.cli.evaluate",
                    set(_modules(HARNESS, "audiosr_verify"))) >= {"audiosr_verify.report.corpus"}
