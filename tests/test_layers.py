"""The layers of core/ and the plugin boundary hold (import-linter contracts in pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def lint(root: Path = ROOT) -> subprocess.CompletedProcess:
    """tools/lint_imports.py of ``root``: import-linter on the package as a wheel lays it out."""
    return subprocess.run([sys.executable, str(root / "tools" / "lint_imports.py")], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow
def test_every_import_contract_is_kept():
    result = lint()
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "BROKEN" not in result.stdout
    assert "Contracts: 3 kept, 0 broken." in result.stdout


@pytest.mark.parametrize("module, line, broken", [
    ("core/data/hub.py", "from mtl.training import rng", "mtl.data is not allowed to import mtl.training"),
    ("core/runs/export.py", "import mtl.plugins.weightings.uniform", "core never imports a plugin"),
    ("plugins/samplers/uniform.py", "from mtl.training import rng", "plugins use only the public API"),
    ("core/study/statistics.py", "from mtl.api import results", "mtl.study is not allowed to import mtl.api"),
])
def test_an_upward_or_plugin_import_breaks_a_contract(tmp_path, module, line, broken):
    """A copy of the sources with one forbidden import added fails the check (the check can fail)."""
    copy = tmp_path / "repo"
    for part in ("core", "plugins", "cli", "tools"):
        shutil.copytree(ROOT / part, copy / part, ignore=shutil.ignore_patterns("__pycache__", "*.so", "build"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    with open(copy / module, "a", encoding="utf-8") as f:
        f.write(f"\n{line}  # a deliberate break\n")
    result = lint(copy)
    assert result.returncode != 0
    assert broken in result.stdout, result.stdout[-3000:]


def test_import_mtl_loads_no_layer_above_the_contract():
    """`import mtl` (what a plugin does) stays light: no torch, no trainer, no run folders."""
    code = ("import sys, mtl; heavy = [m for m in ('torch', 'mtl.training', 'mtl.runs', 'mtl.study', 'mtl.model') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
