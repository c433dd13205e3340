"""Shared fixtures: offline hub, the GLUE folder, a plugin-registering helper, a temporary plugin path."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the hub is unreachable here; fail fast instead of retrying
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
GLUE = Path(os.environ.get("MTL_GLUE_DIR", ROOT.parent / "shared" / "data" / "glue"))


@pytest.fixture(scope="session", autouse=True)
def data_cache(tmp_path_factory) -> Path:
    """The tokenised-data cache of the whole session (mtl.data.cache): in a temporary folder, not the user's."""
    folder = Path(os.environ.get("MTL_DATA_CACHE") or tmp_path_factory.mktemp("data-cache"))
    os.environ["MTL_DATA_CACHE"] = str(folder)
    return folder


@pytest.fixture
def glue_dir() -> Path:
    if not (GLUE / "RTE" / "train.tsv").exists():
        pytest.skip(f"GLUE data not found at {GLUE} (set MTL_GLUE_DIR)")
    return GLUE


@pytest.fixture
def register_plugin():
    """Register in-process plugin objects for one test and unregister them afterwards (as simonw/llm's tests)."""
    from mtl.contract import loader

    loader.load_plugins()
    registered = []

    def register(plugin, name=None):
        loader.pm.register(plugin, name=name)
        registered.append(plugin)
        return plugin

    yield register
    for plugin in registered:
        if loader.pm.is_registered(plugin):
            loader.pm.unregister(plugin)


def install_fixture_package(name: str, tmp_path_factory) -> Path:
    """The package tests/fixtures/NAME, pip-installed into a private folder (not the environment): put the folder
    on PYTHONPATH to use it."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(FIXTURES / name)],
        check=True, capture_output=True,
    )
    return target


@pytest.fixture(scope="session")
def example_plugin_path(tmp_path_factory) -> Path:
    """The example third-party plugin package, pip-installed into a private folder (not the environment)."""
    return install_fixture_package("mtl-example-plugin", tmp_path_factory)


@pytest.fixture(scope="session")
def gated_plugin_path(tmp_path_factory) -> Path:
    """The third-party plugin with a module between backbone and heads (tests/fixtures/mtl-gated-plugin)."""
    return install_fixture_package("mtl-gated-plugin", tmp_path_factory)


def run_mtl(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real `mtl` command line in a subprocess (entry points, stderr, exit status as a user sees them)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "mtl.cli", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd)


TINY_RUN = ["--backbone", "tiny", "--max-steps", "4", "--batch-size", "8", "--max-length", "32", "--quiet"]


def invoke_cli(*args: str):
    """`mtl ARGS` through typer's CliRunner (stdout and stderr kept apart)."""
    from typer.testing import CliRunner

    from mtl.cli import app

    return CliRunner().invoke(app, list(args))


def assert_one_line_error(result, *fragments: str) -> str:
    """A user mistake: non-zero exit, exactly one stderr line `Error: ...` containing ``fragments``."""
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert "Traceback" not in result.output
    return lines[0]


def default_sigint() -> None:
    """A child's ``preexec_fn``: a background job (CI's `cmd &`) starts with SIGINT ignored, and Python then keeps
    ignoring it; give the child the default disposition, as a terminal would."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def live_processes(marker: str) -> dict[int, str]:
    """Our live (not zombie) processes whose command line mentions ``marker``: pid -> command line."""
    found = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state != "Z":
            found[int(pid)] = cmdline
    return found
