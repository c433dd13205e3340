"""The code base is clean under the linter configuration of pyproject.toml ([tool.ruff])."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def ruff(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def test_ruff_finds_nothing():
    result = ruff(".")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def test_ruff_reads_the_project_configuration(tmp_path):
    """The check can fail: an unused import and a 121-character line are found, a 120-character line (which ruff's
    default limit of 88 would flag) is not: the rules are pyproject's."""
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text(encoding="utf-8"), encoding="utf-8")
    long, limit = "x = " + "1 + " * 28 + "12345", "y = " + "1 + " * 28 + "1234"
    assert (len(long), len(limit)) == (121, 120)
    (tmp_path / "bad.py").write_text(f"import os\n\n{long}\n{limit}\n", encoding="utf-8")
    result = ruff("--output-format", "concise", ".", cwd=tmp_path)
    assert result.returncode == 1
    assert "bad.py:1:8: F401" in result.stdout and "bad.py:3:121: E501" in result.stdout, result.stdout
    assert "bad.py:4:" not in result.stdout, result.stdout
