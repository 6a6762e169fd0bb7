"""No import cycle among maskbench's modules, counting every import: module-level and inside
functions (a function-level import only defers a cycle, it does not remove it).

Every module under ``src/maskbench`` is parsed with ``ast``; relative imports are resolved
against the module's package; ``from package import name`` is an edge to ``package.name`` when
that is a module, else to the package (its ``__init__``).

The stages import one way too (:func:`test_stages_import_one_way`): seen as units (a subpackage
such as ``maskbench.benchmark``, or a top-level module such as ``maskbench.results.records``), the
imports form no cycle either, e.g. ``benchmark -> records <- report``. The command-line modules
(``maskbench/cli.py``, ``maskbench/*/cli.py``) are left out there: they wire the commands of
several stages together and nothing imports them but the main parser."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "maskbench"


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    modules = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def runtime_nodes(tree: ast.AST):
    """Every node of ``tree`` except those under ``if TYPE_CHECKING:`` (never executed)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and getattr(child.test, "id", None) == "TYPE_CHECKING":
                stack.extend(child.orelse)
                continue
            stack.append(child)


def imports_of(name: str, path: Path, modules: dict[str, Path], outside: set[str] | None = None) -> set[str]:
    """The maskbench modules ``name`` (at ``path``) imports anywhere in its code (type-checking
    blocks aside); ``outside`` collects the other top-level packages it imports."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in runtime_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                if node.level > 1:
                    base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for target in targets:
            if outside is not None and not target.startswith(PACKAGE):
                outside.add(target.split(".")[0])
                continue
            while target and target not in modules:  # `import a.b.c` of a name inside a module
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
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
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_the_graph_is_read():
    graph = import_graph()
    assert "maskbench.runtimes.registry" in graph
    assert "maskbench.zoo" in graph["maskbench.models.factory"]


def test_no_import_cycle():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles among maskbench modules:\n" + "\n".join(" <-> ".join(c) for c in cycles)


# The stages in the order the data flows; each imports only those before it.
STAGE_ORDER = ("utils", "zoo", "data", "weights", "pipeline", "models", "export", "runtimes", "verify", "evaluation",
               "results", "report", "predict", "benchmark", "deploy", "distributed", "rig")
TORCH_FREE = ("pipeline", "deploy", "data", "utils", "zoo", "results", "rig")  # what a robot's lean install runs
TORCH = {"torch", "torchvision"}


def unit(module: str) -> str:
    """``maskbench.benchmark.worker`` -> ``benchmark``; the package's own ``__init__`` -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def is_cli(module: str) -> bool:
    """A command-line module: it wires stages together (``cli/``, ``*/cli.py``, ``__main__``)."""
    return module.rpartition(".")[2] in ("cli", "__main__") or unit(module) == "cli"


def test_every_module_lives_in_a_stage():
    loose = [m for m in module_files() if unit(m) not in STAGE_ORDER + ("cli", "")]
    assert not loose, f"modules outside the stages {STAGE_ORDER}: {loose}"


def test_each_stage_imports_only_earlier_ones():
    wrong = []
    for module, imported in import_graph().items():
        if is_cli(module) or not unit(module):
            continue
        rank = STAGE_ORDER.index(unit(module))
        wrong += [f"{module} -> {m}" for m in sorted(imported)
                  if unit(m) in STAGE_ORDER and STAGE_ORDER.index(unit(m)) > rank]
    assert not wrong, "imports of a later stage:\n" + "\n".join(wrong)


def test_the_torch_free_core_imports_no_torch():
    modules = module_files()
    outside = {name: set() for name in modules}
    graph = {name: imports_of(name, path, modules, outside[name]) for name, path in modules.items()}
    offenders = []
    starts = [m for m in modules if unit(m) in TORCH_FREE and (not is_cli(m) or unit(m) == "deploy")]
    for start in starts:  # the full install's commands (rig/cli.py builds bundles) aside
        seen, frontier, path_to = {start}, [start], {start: [start]}
        while frontier:
            current = frontier.pop()
            if outside[current] & TORCH:
                offenders.append(" -> ".join(path_to[current]) + f" imports {sorted(outside[current] & TORCH)}")
            for nxt in graph[current] - seen:
                seen.add(nxt)
                path_to[nxt] = path_to[current] + [nxt]
                frontier.append(nxt)
    assert not offenders, "torch reached from the torch-free core:\n" + "\n".join(sorted(set(offenders)))


def test_the_order_check_sees_a_backward_import(tmp_path):
    """The checks can fail: a pipeline module importing models is found."""
    modules = module_files()
    fake = tmp_path / "fake.py"
    fake.write_text("from ..models.detector import RawDetections\nimport torch\n")
    outside: set[str] = set()
    imported = imports_of("maskbench.pipeline.fake", fake, modules, outside)
    assert "maskbench.models.detector" in imported and "torch" in outside


def test_cycle_finder_finds_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_listing_runtimes_imports_no_backend():
    import subprocess
    import sys

    code = ("import sys; from maskbench.runtimes import RUNTIMES, available_runtimes; available_runtimes(); "
            "import maskbench.runtimes.cli as c; "
            "print(sorted(m for m in sys.modules if m.startswith('maskbench.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "PYTHONPATH": str(ROOT)}).stdout
    loaded = eval(out)  # noqa: S307 - our own printout of a list of strings
    backends = [m for m in loaded if m.rpartition(".")[2] in
                ("torch_", "torch_compile", "onnxruntime_", "openvino_", "tensorrt_", "exported")]
    assert not backends, backends
