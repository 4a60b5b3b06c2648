"""The shape of bench/: imports point one way, and task kinds stay inside bench/kinds/.

The import graph is grimp's (import-linter's engine): every `import` statement of bench/,
function-level ones included, except those under `if TYPE_CHECKING:`, which never run.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp
import networkx as nx

from bench.task import KINDS

BENCH = Path(__file__).resolve().parent.parent / "bench"


def import_graph() -> nx.DiGraph:
    graph = grimp.build_graph("bench", exclude_type_checking_imports=True)
    edges = nx.DiGraph()
    for module in graph.modules:
        edges.add_node(module)
        edges.add_edges_from((module, imported) for imported in graph.find_modules_directly_imported_by(module))
    return edges


def test_no_import_cycle_in_bench():
    cycles = [sorted(component) for component in nx.strongly_connected_components(import_graph()) if len(component) > 1]
    assert cycles == []


def test_the_graph_sees_function_level_imports(tmp_path, monkeypatch):
    """The cycle test is only as good as its graph: a cycle made by an import inside a function counts."""
    package = tmp_path / "cyclic"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("import cyclic.b\n")
    (package / "b.py").write_text("def later():\n    import cyclic.a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("cyclic")
    assert graph.find_modules_directly_imported_by("cyclic.b") == {"cyclic.a"}


def test_import_contracts_hold():
    """pyproject.toml's [tool.importlinter] layers: what `make lint` checks in CI, here too."""
    done = subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--no-cache"], cwd=BENCH.parent,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def string_literals(path: Path) -> list[tuple[int, str]]:
    """(line, value) of every string constant of a module, docstrings left out (prose may mention a kind)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def test_no_module_outside_kinds_names_a_kind():
    """A branch on a kind compares with its name; none is written outside bench/kinds/."""
    kinds = set(KINDS.names())
    assert {"classification", "similarity", "reconstruction", "merging"} <= kinds
    named = [f"{path.relative_to(BENCH.parent)}:{line}: {value!r}"
             for path in sorted(BENCH.rglob("*.py")) if "kinds" not in path.relative_to(BENCH).parts
             for line, value in string_literals(path) if value in kinds]
    assert named == []


def test_no_function_local_import_of_bench():
    """Imports of bench modules sit at the top of a module (or under TYPE_CHECKING), where the layers see them."""
    local = []
    for path in sorted(BENCH.rglob("*.py")):
        for function in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                local += [f"{path.relative_to(BENCH.parent)}:{node.lineno}" for node in ast.walk(function)
                          if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "bench"
                          or isinstance(node, ast.Import) and any(a.name.split(".")[0] == "bench" for a in node.names)]
    assert local == []
