"""The pluggy registry: discovery, lazy factories, conflicts, broken plugins, check_pending, suggestions."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import pytest
from conftest import run_mtl

import mtl
from mtl import Weighting, hookimpl
from mtl.contract import loader
from mtl.errors import MtlError, UnknownNameError


def test_builtin_plugins_are_registered_like_third_party_ones():
    assert "uniform" in mtl.available("weighting")
    assert {"proportional", "uniform"} <= set(mtl.available("sampler"))
    assert {"minilm", "tiny", "hf"} <= set(mtl.available("backbone"))
    entry, _ = loader.registry().get("weighting", "uniform")
    assert entry.plugin == "mtl.plugins.weightings.uniform"
    assert entry.package == "mtl" and entry.version == mtl.__version__


def test_create_builds_with_converted_options(register_plugin):
    class Scaled(Weighting):
        def __init__(self, alpha: float = 1.0, names: list[str] | None = None):
            super().__init__()
            self.alpha, self.names = alpha, names

    class Plugin:
        @hookimpl
        def register_weightings(self, register):
            register("scaled", Scaled, description="test")

    register_plugin(Plugin())
    w = mtl.create("weighting", "scaled", alpha="0.25", names="a,b")
    assert isinstance(w, Scaled) and w.alpha == 0.25 and w.names == ["a", "b"]


def test_unknown_name_lists_valid_names_and_suggests():
    with pytest.raises(UnknownNameError) as info:
        mtl.create("weighting", "unifrom")
    message = str(info.value)
    assert "unknown weighting 'unifrom'" in message
    assert "Did you mean 'uniform'" in message
    assert "Valid: " in message and "uniform" in message.split("Valid: ")[1]


def test_unknown_kind_is_an_error():
    with pytest.raises(UnknownNameError, match="plugin kind 'weightings'.*Did you mean 'weighting'"):
        mtl.available("weightings")


def test_name_conflict_names_both_plugins(register_plugin):
    class A:
        @hookimpl
        def register_weightings(self, register):
            register("dup", Weighting)

    class B:
        @hookimpl
        def register_weightings(self, register):
            register("dup", Weighting)

    register_plugin(A(), name="plugin-a")
    register_plugin(B(), name="plugin-b")
    with pytest.raises(MtlError) as info:
        mtl.available("weighting")
    assert "'dup' is registered twice" in str(info.value)
    assert "plugin-a" in str(info.value) and "plugin-b" in str(info.value)


def test_alias_conflicting_with_a_name_is_a_conflict(register_plugin):
    class A:
        @hookimpl
        def register_weightings(self, register):
            register("other", Weighting, aliases=("uniform",))

    register_plugin(A(), name="aliaser")
    with pytest.raises(MtlError, match="'uniform' is registered twice.*aliaser"):
        mtl.create("weighting", "uniform")


def test_misspelled_hook_is_reported_and_the_plugin_not_loaded():
    module = types.ModuleType("misspelled_plugin")

    @hookimpl
    def register_weighting(register):  # missing "s": check_pending must catch it
        register("never", Weighting)

    module.register_weighting = register_weighting
    before = len(loader.failed)
    try:
        ok = loader.register_module(module, loader.PluginInfo("misspelled", "misspelled-pkg", "1.0", builtin=False))
        assert ok is False
        assert not loader.pm.is_registered(module)
        failure = loader.failed[-1]
        assert failure.name == "misspelled" and "register_weighting" in failure.error
        assert "uniform" in mtl.available("weighting")  # everything else still works
    finally:
        del loader.failed[before:]


def test_hook_that_raises_is_isolated(register_plugin, capsys):
    class Broken:
        @hookimpl
        def register_weightings(self, register):
            raise RuntimeError("boom")

    register_plugin(Broken(), name="broken-hook")
    assert "uniform" in mtl.available("weighting")
    registry = loader.registry()
    assert any(f.name == "broken-hook" and "boom" in f.error for f in registry.failed)
    assert "broken-hook" in capsys.readouterr().err


@pytest.mark.parametrize("name, factory, fragment", [
    ("", mtl.Weighting, "'' is not a plugin name"),  # before: every later name of the kind was "registered twice"
    ("has space", mtl.Weighting, "'has space' is not a plugin name"),
    (5, mtl.Weighting, "5 is not a plugin name"),  # before: `mtl plugins` failed sorting names
    ("rte:x", mtl.Weighting, "'rte:x' is not a plugin name"),
    ("t-noncallable", 42, "the factory must be callable or a \"module:attr\" string (got int)"),
])
def test_a_registration_that_is_no_plugin_fails_its_plugin_alone(register_plugin, capsys, name, factory, fragment):
    class Bad:
        @hookimpl
        def register_weightings(self, register):
            register(name, factory)

    register_plugin(Bad(), name="bad-registration")
    registry = loader.registry()
    registry.check()  # no conflict: the bad name was not added
    assert "uniform" in mtl.available("weighting") and "mamt" in mtl.available("weighting")
    (failure,) = [f for f in registry.failed if f.name == "bad-registration"]
    assert fragment in failure.error
    assert "bad-registration" in capsys.readouterr().err


def test_lazy_string_factory_is_imported_only_when_used(register_plugin, tmp_path, monkeypatch):
    (tmp_path / "lazy_weighting_mod.py").write_text(
        "from mtl import Weighting\nclass Lazy(Weighting):\n    def __init__(self, k: int = 1):\n"
        "        super().__init__(); self.k = k\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    class Plugin:
        @hookimpl
        def register_weightings(self, register):
            register("lazy", "lazy_weighting_mod:Lazy")

    register_plugin(Plugin())
    assert "lazy" in mtl.available("weighting")
    assert "lazy_weighting_mod" not in sys.modules
    assert mtl.create("weighting", "lazy", k="3").k == 3
    assert "lazy_weighting_mod" in sys.modules


def test_broken_lazy_factory_is_a_clear_error(register_plugin):
    class Plugin:
        @hookimpl
        def register_weightings(self, register):
            register("ghost", "no_such_module_xyz:Ghost")

    register_plugin(Plugin(), name="ghost-plugin")
    with pytest.raises(MtlError, match="weighting 'ghost' \\(plugin 'ghost-plugin'\\) could not be loaded"):
        mtl.create("weighting", "ghost")


def test_listing_plugins_does_not_import_torch():
    code = ("import sys, mtl\n"
            "for kind in ('weighting', 'sampler', 'backbone', 'task'): mtl.available(kind)\n"
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_help_does_not_import_torch():
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom mtl.cli import app\n"
            "r = CliRunner().invoke(app, ['--help'])\nassert r.exit_code == 0, r.output\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------- real third-party packages


@pytest.mark.slow
def test_example_plugin_package_is_discovered(example_plugin_path):
    result = run_mtl("plugins", "--json", env={"PYTHONPATH": str(example_plugin_path)})
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["plugins"]
    boost = [r for r in rows if r["name"] == "target-boost"]
    assert boost and boost[0]["kind"] == "weighting"
    assert boost[0]["package"] == "mtl-example-plugin" and boost[0]["version"] == "0.1.0"
    assert any(r["name"] == "target-every" and r["kind"] == "sampler" for r in rows)


@pytest.mark.slow
def test_mtl_load_plugins_limits_third_party_plugins(example_plugin_path):
    env = {"PYTHONPATH": str(example_plugin_path), "MTL_LOAD_PLUGINS": ""}
    rows = json.loads(run_mtl("plugins", "--json", env=env).stdout)["plugins"]
    names = {r["name"] for r in rows}
    assert "target-boost" not in names and "uniform" in names  # built-ins always load
    env["MTL_LOAD_PLUGINS"] = "example"
    rows = json.loads(run_mtl("plugins", "--json", env=env).stdout)["plugins"]
    assert "target-boost" in {r["name"] for r in rows}


def _write_dist(site, dist, module, code, entry_name):
    (site / f"{module}.py").write_text(code)
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[mtl]\n{entry_name} = {module}\n")


def test_plugin_that_fails_to_import_is_isolated(tmp_path):
    _write_dist(tmp_path, "broken-plugin", "broken_mtl_plugin", "raise ImportError('needs libfoo')\n", "broken")
    env = {"PYTHONPATH": str(tmp_path)}
    result = run_mtl("plugins", "--json", env=env)
    assert result.returncode == 1  # a failed plugin is reported with a non-zero exit
    data = json.loads(result.stdout)
    assert [f["name"] for f in data["failed"]] == ["broken"]
    assert "needs libfoo" in data["failed"][0]["error"] and data["failed"][0]["package"] == "broken-plugin"
    assert "uniform" in {r["name"] for r in data["plugins"]}
    assert "plugin 'broken' (broken-plugin 1.0) failed to load" in result.stderr
    assert "Traceback" not in result.stderr
    # every other command still works
    assert run_mtl("plugins", "show", "uniform", "--kind", "weighting", env=env).returncode == 0


@pytest.mark.slow
def test_third_party_name_conflict_with_builtin_is_reported(tmp_path):
    code = ("from mtl import hookimpl, Weighting\n@hookimpl\ndef register_weightings(register):\n"
            "    register('uniform', Weighting)\n")
    _write_dist(tmp_path, "clash-plugin", "clash_mtl_plugin", code, "clash")
    result = run_mtl("run", "--backbone", "tiny", "--max-steps", "1", env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 1
    assert "weighting 'uniform' is registered twice" in result.stderr
    assert "mtl.plugins.weightings.uniform" in result.stderr and "clash" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_registry_is_rebuilt_when_a_plugin_object_is_replaced():
    """A plugin unregistered and freed must not leave its registry behind for the next one (CPython may
    hand the freed object's id to the new plugin object, so the cache cannot be keyed on ids)."""
    import gc

    class Plugin:
        def __init__(self, name):
            self.name = name

        @hookimpl
        def register_weightings(self, register):
            register(self.name, Weighting)

    loader.load_plugins()
    for round_ in range(20):
        plugin = Plugin(f"first{round_}")
        loader.pm.register(plugin)
        try:
            assert f"first{round_}" in mtl.available("weighting")
        finally:
            loader.pm.unregister(plugin)
        del plugin
        gc.collect()
        plugin = Plugin(f"second{round_}")
        loader.pm.register(plugin)
        try:
            names = mtl.available("weighting")
        finally:
            loader.pm.unregister(plugin)
        del plugin
        assert f"second{round_}" in names and f"first{round_}" not in names
