"""No import cycles anywhere in the package: every import counts, inside functions and under TYPE_CHECKING too."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("lint_imports", ROOT / "tools" / "lint_imports.py")
lint_imports = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lint_imports)


EDGES = """
import json, grimp
graph = grimp.build_graph("mtl", exclude_type_checking_imports=False, cache_dir=None)
edges = {m: {i: sorted({d["line_number"] for d in graph.get_import_details(importer=m, imported=i)})
             for i in graph.find_modules_directly_imported_by(m)} for m in graph.modules}
print(json.dumps(edges))
"""


def import_graph(root: Path, tmp_path: Path) -> dict[str, dict[str, list[int]]]:
    """``{importer: {imported: [line, ...]}}`` of every module of ``mtl`` under ``root``, as a wheel lays the
    package out (mtl.plugins and mtl.cli included: tools/lint_imports.py's tree), read by grimp in a fresh process."""
    tree = tmp_path / "tree"
    lint_imports.package_tree(tree, root)
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, "-c", EDGES], capture_output=True, text=True, env=env, cwd=tree,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


def cycles(edges: dict[str, dict[str, list[int]]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(module: str) -> tuple[str, Iterator[str]]:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        return module, iter(sorted(edges.get(module, {})))

    for root in sorted(edges):
        if root in index:
            continue
        work = [visit(root)]
        while work:
            module, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    work.append(visit(child))
                elif child in on_stack:
                    low[module] = min(low[module], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[module])
            if low[module] == index[module]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == module:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def describe(edges: dict[str, dict[str, list[int]]], component: list[str]) -> str:
    """The imports inside one cycle, one per line: ``a -> b (line 12)``."""
    return "\n".join(f"  {importer} -> {imported} (line {', '.join(map(str, edges[importer][imported]))})"
                     for importer in component for imported in sorted(edges[importer]) if imported in component)


def test_cycles_finds_the_components_of_a_small_graph():
    """Checked against components worked out by hand: a->b->c->a and d<->e are cycles, f->a is not part of one."""
    edges = {"a": {"b": [1]}, "b": {"c": [1]}, "c": {"a": [1], "d": [2]}, "d": {"e": [1]}, "e": {"d": [1]},
             "f": {"a": [3]}}
    assert sorted(cycles(edges)) == [["a", "b", "c"], ["d", "e"]]
    assert cycles({"a": {"b": [1]}, "b": {}}) == []
    assert describe(edges, ["d", "e"]) == "  d -> e (line 1)\n  e -> d (line 1)"


def test_the_package_has_no_import_cycle(tmp_path):
    edges = import_graph(ROOT, tmp_path)
    assert "mtl.plugins.weightings.mamt" in edges and "mtl.cli" in edges and "mtl.runs.folder" in edges
    found = cycles(edges)
    assert not found, "import cycles:\n" + "\n".join(describe(edges, c) for c in found)


@pytest.mark.parametrize("module, line", [
    ("core/runs/best.py", "    from mtl.runs.folder import RunFolder"),  # inside a function
    ("core/data/examples.py", "if TYPE_CHECKING:\n    from mtl.data.files import load_split"),
])
def test_a_cycle_is_found_and_named(tmp_path, module, line):
    """A copy of the sources with one import added back that closes a cycle fails, naming both modules."""
    copy = tmp_path / "repo"
    for part in ("core", "plugins", "cli"):
        shutil.copytree(ROOT / part, copy / part, ignore=shutil.ignore_patterns("__pycache__", "*.so", "build"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    text = (copy / module).read_text(encoding="utf-8")
    if "TYPE_CHECKING" in line:
        text = text.replace("from __future__ import annotations\n",
                            "from __future__ import annotations\n\nfrom typing import TYPE_CHECKING\n", 1)
        text += f"\n{line}\n"
    else:
        text += f"\n\ndef _added():\n{line}\n"
    (copy / module).write_text(text, encoding="utf-8")
    edges = import_graph(copy, tmp_path)
    found = cycles(edges)
    assert found
    message = "\n".join(describe(edges, c) for c in found)
    importer = "mtl." + module.removeprefix("core/").removesuffix(".py").replace("/", ".")
    assert f"  {importer} -> " in message
