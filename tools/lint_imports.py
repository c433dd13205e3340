"""Check the import contracts of pyproject.toml ([tool.importlinter]) on the package as it is installed.

The repository maps folders onto the package (core/ -> mtl, plugins/ -> mtl.plugins, cli/ -> mtl.cli), so
import-linter, which walks the folder of ``mtl``, would not see mtl.plugins or mtl.cli in an editable install.
This script lays the package out as a wheel would (a temporary tree of links to the real files) and runs
``lint-imports`` on it. Usage: ``python tools/lint_imports.py`` (exit status 0 when every contract holds).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

try:
    import tomllib
except ImportError:  # Python 3.10: import-linter brings tomli
    import tomli as tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def package_tree(into: Path, root: Path = ROOT) -> None:
    """Links to every .py file of the project in ``root`` under ``into``, at its installed module path."""
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    mapping = config["tool"]["setuptools"]["package-dir"]
    for package, folder in mapping.items():
        source = root / folder
        for path in source.rglob("*.py"):
            relative = path.relative_to(source)
            if "build" in relative.parts or "__pycache__" in relative.parts:
                continue
            target = into.joinpath(*package.split("."), relative)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(path)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="mtl-lint-") as tmp:
        package_tree(Path(tmp))
        env = {**os.environ, "PYTHONPATH": tmp + os.pathsep + os.environ.get("PYTHONPATH", "")}
        command = [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()",
                   "--no-cache", "--no-logo", str(ROOT / "pyproject.toml")]
        return subprocess.run(command, env=env, cwd=tmp).returncode


if __name__ == "__main__":
    sys.exit(main())
