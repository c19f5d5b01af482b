"""The code's shape: data flows one way, no import cycle, short functions.

Walks every module of ``src/tmsnet`` with :mod:`ast`, including imports inside
functions (a lazy import is still an arrow), and checks the layering written in
``docs/architecture.md``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

SRC = Path(__file__).parents[1] / "src"
PACKAGE = SRC / "tmsnet"

#: Layer of each top-level part of the package (low to high): a module may import
#: only its own layer or lower ones. ``*/commands.py`` and ``cli`` form the top layer.
LAYERS = {
    "exceptions": 0, "spaces": 0, "utils": 0, "data": 0, "io": 0, "parallel": 0,
    "fmri": 1,
    "targeting": 2, "networks": 2, "eeg": 2, "physics": 2, "surface": 2,
    "navigation": 3,
    "report": 4,
    "jobs": 5, "bids_app": 5,
    "cli": 6,
    "simulate": 5,
}
COMMAND_LAYER = 6
#: Modules that may import tmsnet.simulate besides */commands.py (the --demo paths); tests,
#: benchmarks and tools may too.
SIMULATE_USERS = ("tmsnet.cli",)
#: The public facade re-exports the jobs lazily (PEP 562 ``__getattr__``).
FACADE = "tmsnet"
MAX_FUNCTION_LINES = 100
LONG_MARKER = "# long function:"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The most specific known module that ``name`` refers to."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + [base]).strip(".")
            # ``from pkg import sub`` points at the submodule; ``from pkg import name`` at pkg.
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] == "tmsnet":
                target = _resolve(name, known)
                if target and target != module:
                    found.add(target)
    return found


@pytest.fixture(scope="module")
def graph() -> nx.DiGraph:
    known = _modules()
    g = nx.DiGraph()
    for module, path in known.items():
        g.add_node(module)
        for target in _imports(module, path, known):
            g.add_edge(module, target)
    return g


def _layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:
        return 0
    if parts[-1] == "commands":
        return COMMAND_LAYER
    return LAYERS[parts[1]]


def test_every_part_has_a_layer():
    parts = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    parts |= {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    missing = parts
    assert missing <= set(LAYERS), f"add {sorted(missing - set(LAYERS))} to LAYERS and docs/architecture.md"


def test_no_import_cycle(graph):
    cycles = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    assert not cycles, f"import cycles: {cycles}"


def test_imports_point_down_the_layers(graph):
    upward = [
        f"{a} (layer {_layer(a)}) -> {b} (layer {_layer(b)})"
        for a, b in graph.edges
        if a != FACADE and _layer(a) < _layer(b)
    ]
    assert not upward, "imports against the data flow:\n" + "\n".join(sorted(upward))


def test_only_demo_paths_import_the_simulator(graph):
    wrong = sorted(
        f"{a} -> {b}" for a, b in graph.edges
        if b.startswith("tmsnet.simulate") and not a.startswith("tmsnet.simulate")
        and not (a.startswith(SIMULATE_USERS) or a.endswith(".commands"))
    )
    assert not wrong, "library code imports the simulator:\n" + "\n".join(wrong)


def test_writers_and_science_never_import_the_report(graph):
    wrong = sorted(f"{a} -> {b}" for a, b in graph.edges
                   if b.startswith("tmsnet.report") and _layer(a) < LAYERS["report"])
    assert not wrong, "\n".join(wrong)


def test_detector_sees_a_planted_cycle_and_an_upward_arrow(tmp_path):
    """The walk itself: a function-level import counts, and a cycle is found."""
    a = tmp_path / "a.py"
    a.write_text("def f():\n    from tmsnet.report import html\n")
    known = {"tmsnet.targeting.a": a, "tmsnet.report.html": a}
    assert _imports("tmsnet.targeting.a", a, known) == {"tmsnet.report.html"}
    g = nx.DiGraph([("x", "y"), ("y", "x")])
    assert [c for c in nx.strongly_connected_components(g) if len(c) > 1]


def _long_functions() -> list[str]:
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            length = node.end_lineno - start + 1
            marked = any(LONG_MARKER in lines[i] for i in range(max(0, start - 2), node.lineno))
            if length > MAX_FUNCTION_LINES and not marked:
                long.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({length} lines)")
    return long


def test_functions_are_short_or_say_why():
    long = _long_functions()
    assert not long, (f"functions over {MAX_FUNCTION_LINES} lines without a '{LONG_MARKER} <reason>' "
                      "comment on or above the def line:\n" + "\n".join(long))


#: What no simulator may import, directly or through other modules (issue 13, "independent
#: truth"): the targeting, cleaning and measuring code it is used to test. A simulator that
#: placed its truth with ``targeting.regions`` or measured it with ``eeg.teps`` would only
#: compare that code with itself. Data loaders (``tmsnet.data``: templates, masks) and writers
#: (``tmsnet.io``) are allowed; no exception is needed (the EEG montage is MNE's, loaded by
#: the simulator itself).
SIMULATOR_MUST_NOT_IMPORT = ("tmsnet.targeting", "tmsnet.fmri", "tmsnet.eeg", "tmsnet.networks",
                             "tmsnet.physics")


def _simulator_imports_of_tested_code(graph: nx.DiGraph) -> list[str]:
    def tested(module: str) -> bool:
        return any(module == p or module.startswith(p + ".") for p in SIMULATOR_MUST_NOT_IMPORT)

    wrong = []
    for sim in sorted(m for m in graph if m == "tmsnet.simulate" or m.startswith("tmsnet.simulate.")):
        for target in sorted(t for t in nx.descendants(graph, sim) if tested(t)):
            path = nx.shortest_path(graph, sim, target)
            wrong.append(" -> ".join(path))
    return wrong


def test_simulators_never_import_the_code_they_test(graph):
    wrong = _simulator_imports_of_tested_code(graph)
    assert not wrong, "a simulator imports code it is used to test:\n" + "\n".join(wrong)


def test_simulator_rule_sees_an_indirect_import():
    """The rule follows imports through other modules (a lazy one too)."""
    g = nx.DiGraph([("tmsnet.simulate.x", "tmsnet.io.y"), ("tmsnet.io.y", "tmsnet.eeg.teps"),
                    ("tmsnet.simulate.z", "tmsnet.data")])
    assert _simulator_imports_of_tested_code(g) == [
        "tmsnet.simulate.x -> tmsnet.io.y -> tmsnet.eeg.teps"]
