"""The import contract: declared layers, no back-edges, no cycles, a lean detector.

Imports are read statically with ``ast`` (nothing is imported), so the whole package is checked
in well under a second. The layers are the ones drawn in docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = "monotakd_ros"
SOURCE_ROOT = Path(__file__).resolve().parents[1] / PACKAGE

# Lowest first. A module may import its own top-level package and any package of a LOWER
# layer; packages sharing a layer are independent of each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors",),                                # one exception hierarchy
    ("configuration", "resources"),             # strict YAML loader; shipped files
    ("geometry", "model_io"),                   # frames and boxes; checkpoint format, InputSpec
    ("data",),                                  # KITTI readers, synthetic world, datasets
    ("models", "bags"),                         # networks; the same data as rosbags
    ("eval", "distill"),                        # KITTI metric and stream core; distill losses
    ("training", "inference"),                  # stages and the loop; the predictor
    ("distiller", "ros"),                       # bag/topic distillation runner; msg conversion
    ("nodes",),                                 # thin rclpy nodes
    ("demo",),                                  # the one-command demo
)

# What the on-robot detector must never load: the training and distillation stacks and the
# data sets (readers of whole folders, the synthetic world generator).
DETECTOR = f"{PACKAGE}.nodes.detector"
DETECTOR_FORBIDDEN = ("training", "distill", "distiller", "data.datasets",
                      "data.kitti.object_dataset", "data.synth")


def module_name(path: Path, root: Path) -> str:
    """Dotted name of a source file under ``root`` (a package maps to its ``__init__``)."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking_block(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _import_nodes(tree: ast.Module, module_level_only: bool) -> Iterator[ast.stmt]:
    """Import statements; module level means run at import (not in a def or TYPE_CHECKING)."""
    if not module_level_only:
        yield from (n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)))
        return
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.If, ast.Try, ast.With)) and not _is_type_checking_block(node):
            for field in ("body", "orelse", "finalbody", "handlers"):
                for child in getattr(node, field, []):
                    pending.extend(child.body if isinstance(child, ast.ExceptHandler)
                                   else [child])


def imported_modules(source: str, this: str, known: set[str],
                     module_level_only: bool) -> set[str]:
    """Package modules named by the import statements of one file."""
    found: set[str] = set()
    package = this if f"{this}.__init__" in known else this.rpartition(".")[0]
    for node in _import_nodes(ast.parse(source), module_level_only):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}".rstrip(".")
            # "from pkg import sub" imports the module pkg.sub when it exists.
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names
                                if f"{base}.{alias.name}" in known]
        found.update(t for t in targets if t == PACKAGE or t.startswith(f"{PACKAGE}."))
    return found


def import_graph(root: Path, module_level_only: bool) -> dict[str, set[str]]:
    """Module -> package modules it imports, for every file under ``root``."""
    files = {module_name(path, root): path for path in sorted(root.rglob("*.py"))}
    known = set(files) | {f"{m}.__init__" for m, p in files.items() if p.name == "__init__.py"}
    return {module: imported_modules(path.read_text(), module, known, module_level_only)
            for module, path in files.items()}


def layer_of(module: str) -> int | None:
    """Index of the layer of a module's top-level package (None: the package root)."""
    top = module.split(".")[1] if "." in module else None
    for index, packages in enumerate(LAYERS):
        if top in packages:
            return index
    return None


def back_edges(graph: dict[str, set[str]]) -> list[str]:
    """Imports that point up, sideways into another package, or out of the declared layers."""
    problems = []
    for module, targets in sorted(graph.items()):
        source_layer = layer_of(module)
        for target in sorted(targets):
            target_layer = layer_of(target)
            same_package = module.split(".")[:2] == target.split(".")[:2]
            if same_package or target == PACKAGE:
                continue
            if source_layer is None or target_layer is None:
                problems.append(f"{module} -> {target}: package not in LAYERS")
            elif target_layer >= source_layer:
                problems.append(f"{module} (layer {source_layer}) -> {target} "
                                f"(layer {target_layer})")
    return problems


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def import_closure(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every package module loaded by importing ``start`` (parents' ``__init__`` included)."""
    seen: set[str] = set()
    pending = [start]
    while pending:
        module = pending.pop()
        parts = module.split(".")
        for depth in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b first
            name = ".".join(parts[:depth])
            if name not in seen and name in graph:
                seen.add(name)
                pending.extend(graph[name])
    return seen


@pytest.fixture(scope="module")
def all_imports() -> dict[str, set[str]]:
    return import_graph(SOURCE_ROOT, module_level_only=False)


@pytest.fixture(scope="module")
def runtime_imports() -> dict[str, set[str]]:
    return import_graph(SOURCE_ROOT, module_level_only=True)


def test_every_package_has_a_layer(all_imports: dict[str, set[str]]) -> None:
    tops = {m.split(".")[1] for m in all_imports if "." in m}
    declared = {p for layer in LAYERS for p in layer}
    assert tops == declared


def test_no_import_points_against_the_layers(all_imports: dict[str, set[str]]) -> None:
    assert back_edges(all_imports) == []


def test_no_module_level_import_cycle(runtime_imports: dict[str, set[str]]) -> None:
    assert find_cycle(runtime_imports) is None


def test_detector_loads_no_training_distillation_or_dataset_module(
        runtime_imports: dict[str, set[str]]) -> None:
    closure = import_closure(runtime_imports, DETECTOR)
    assert f"{PACKAGE}.inference.predictor" in closure  # the closure is really followed
    loaded = sorted(m for m in closure for bad in DETECTOR_FORBIDDEN
                    if m == f"{PACKAGE}.{bad}" or m.startswith(f"{PACKAGE}.{bad}."))
    assert loaded == []


def test_checks_catch_a_back_edge_a_cycle_and_a_heavy_detector(tmp_path: Path) -> None:
    """The same checks on a tiny fake package fail where they should."""
    root = tmp_path / PACKAGE
    files = {
        "__init__.py": "",
        "geometry/__init__.py": "",
        "geometry/boxes.py": "from monotakd_ros.training import loop\n",  # back-edge
        "training/__init__.py": "",
        "training/loop.py": "import monotakd_ros.training.steps\n",
        "training/steps.py": "from . import loop\n",  # cycle loop -> steps -> loop
        "nodes/__init__.py": "",
        "nodes/detector.py": "from monotakd_ros.geometry import boxes\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    graph = import_graph(root, module_level_only=True)
    assert back_edges(graph) == [
        f"{PACKAGE}.geometry.boxes (layer 2) -> {PACKAGE}.training (layer 6)",
        f"{PACKAGE}.geometry.boxes (layer 2) -> {PACKAGE}.training.loop (layer 6)"]
    assert find_cycle(graph) == [f"{PACKAGE}.training.loop", f"{PACKAGE}.training.steps",
                                 f"{PACKAGE}.training.loop"]
    closure = import_closure(graph, f"{PACKAGE}.nodes.detector")
    assert f"{PACKAGE}.training.steps" in closure


def test_the_detector_process_loads_no_bag_library_nor_training_code() -> None:
    """A real import of the node (not the static graph): third-party modules count too."""
    import subprocess
    import sys

    probe = ("import sys, monotakd_ros.nodes.detector; print('\\n'.join(sorted(m for m in "
             "sys.modules if m.split('.')[0] in ('rosbags', 'monotakd_ros'))))")
    loaded = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                            text=True).stdout.split()
    assert "monotakd_ros.inference.predictor" in loaded  # the probe really imported the node
    heavy = [m for m in loaded if m.split(".")[0] == "rosbags" or any(
        m == f"{PACKAGE}.{bad}" or m.startswith(f"{PACKAGE}.{bad}.")
        for bad in (*DETECTOR_FORBIDDEN, "bags.kitti_layout", "data.synth"))]
    assert heavy == []
