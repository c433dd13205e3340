"""A plugin whose own code raises: one line naming it (not a traceback), nothing half-written, a kept checkpoint kept.

Found by a fault sweep: a weighting whose loss() raised or returned a vector, None or a float, a factory raising
KeyError, a setup() raising ValueError all ended in a 50-60 line traceback and left config.json and metrics.jsonl.
"""

from __future__ import annotations

import json

import pytest
import torch
from conftest import TINY_RUN, assert_one_line_error, invoke_cli

from mtl import Weighting, hookimpl
from mtl.errors import PluginError
from mtl.training import faults


class RaisesInLoss(Weighting):
    def loss(self, step):
        raise RuntimeError("boom in loss")


class VectorLoss(Weighting):
    def loss(self, step):
        return torch.cat(list(step.losses.values()))


class NoneLoss(Weighting):
    def loss(self, step):
        return None


class DetachedLoss(Weighting):
    def loss(self, step):
        return step.weighted({t: 1.0 for t in step.losses}).detach()


class KeyErrorInInit(Weighting):
    def __init__(self):
        super().__init__()
        raise KeyError("missing thing")


class SetupRaises(Weighting):
    def setup(self, run):
        raise ValueError("setup broke")


class RaisesAtStep3(Weighting):
    def __init__(self):
        super().__init__()
        self.steps = 0

    def after_step(self, step):
        self.steps += 1
        if self.steps == 3:
            raise ZeroDivisionError("late fault")


TASKS = ["--target", "demo-sentiment", "--aux", "demo-similarity"]
FAULTY = {"t-raises": RaisesInLoss, "t-vector": VectorLoss, "t-none": NoneLoss, "t-detached": DetachedLoss,
          "t-keyerror": KeyErrorInInit, "t-setup": SetupRaises, "t-late": RaisesAtStep3}


@pytest.fixture
def faulty(register_plugin):
    class Plugin:
        @hookimpl
        def register_weightings(self, register):
            for name, cls in FAULTY.items():
                register(name, cls)

    register_plugin(Plugin(), name="faulty-weightings")


@pytest.mark.parametrize("name, fragments", [
    ("t-raises", ["weighting 't-raises' failed: RuntimeError: boom in loss", "MTL_TRACEBACK=1"]),
    ("t-vector", ["weighting 't-vector' failed: TypeError: loss() must return a scalar tensor that requires grad "
                  "(got a tensor of shape (8,))"]),
    ("t-none", ["weighting 't-none' failed", "(got NoneType)"]),
    ("t-detached", ["weighting 't-detached' failed", "(got a tensor of shape () without a graph)"]),
    ("t-keyerror", ["weighting 't-keyerror' could not be built: KeyError: 'missing thing'"]),
    ("t-setup", ["weighting 't-setup' failed: ValueError: setup broke"]),
])
def test_a_faulty_weighting_is_one_line_naming_it_and_writes_nothing(faulty, tmp_path, name, fragments):
    out = tmp_path / "run"
    result = invoke_cli("run", *TINY_RUN, *TASKS, "--weighting", name, "-o", str(out))
    assert_one_line_error(result, *fragments)
    assert not out.exists()


def test_a_fault_after_a_checkpoint_keeps_the_run_and_says_so(faulty, tmp_path):
    out = tmp_path / "run"
    result = invoke_cli("run", *TINY_RUN, *TASKS, "--weighting", "t-late", "--checkpoint-every", "1", "-o", str(out))
    line = assert_one_line_error(result, "weighting 't-late' failed: ZeroDivisionError: late fault",
                                 "the last checkpoint", "is intact", f"mtl run --resume {out}")
    listed = json.loads((out / "checkpoint" / "checkpoints.json").read_text())["checkpoints"]
    assert listed[-1]["step"] == 2 and listed[-1]["file"] in line  # the step before the fault's, kept


def test_mtl_traceback_shows_the_plugins_own_exception(faulty, tmp_path, monkeypatch):
    from mtl.runs.config import RunConfig
    from mtl.training.trainer import Trainer

    config = RunConfig(target="demo-sentiment", aux=["demo-similarity"], weighting="t-raises", backbone="tiny",
                       max_steps=2, batch_size=8, max_length=32, output=str(tmp_path / "a"))
    with pytest.raises(PluginError) as info:
        Trainer(config).train()
    assert isinstance(info.value.__cause__, RuntimeError)
    monkeypatch.setenv("MTL_TRACEBACK", "1")
    config.output = str(tmp_path / "b")
    with pytest.raises(RuntimeError, match="boom in loss"):
        Trainer(config).train()


def test_owner_is_the_plugin_whose_code_raised():
    import mtl

    plugins = {"weighting": ("uniform", mtl.create("weighting", "uniform")),
               "sampler": ("proportional", mtl.create("sampler", "proportional"))}
    try:
        plugins["weighting"][1].loss(None)  # its (base class's) loss reads step.losses
    except AttributeError as exc:
        assert faults.owner(exc, plugins) == ("weighting", "uniform")
    else:
        raise AssertionError("loss(None) did not raise")
    try:
        json.loads("{")
    except ValueError as exc:  # raised in json's code, called from no plugin's
        assert faults.owner(exc, plugins) is None
    both = {"weighting": ("uniform", plugins["weighting"][1]), "sampler": ("uniform-too", plugins["weighting"][1])}
    try:
        plugins["weighting"][1].loss(None)
    except AttributeError as exc:  # a module two plugins share names neither
        assert faults.owner(exc, both) is None


@pytest.mark.parametrize("attributes, fragment", [
    ({"metrics": ("nope-metric",)}, "task 't-task': unknown metric 'nope-metric' (known: accuracy, f1"),
    ({"metrics": ()}, "task 't-task' declares no metrics"),
    ({"labels": ()}, "task 't-task' declares 0 labels; a classification task needs two or more"),
])
def test_a_task_plugin_with_what_no_run_can_use_is_refused_before_training(register_plugin, tmp_path, attributes,
                                                                             fragment):
    """Before: an unknown metric trained and then raised at evaluation; no metrics an IndexError; no labels blamed
    the data file."""
    import mtl

    base = type(mtl.create("task", "demo-sentiment"))

    class Plugin:
        @hookimpl
        def register_tasks(self, register):
            register("t-task", type("Broken", (base,), dict(attributes)))

    register_plugin(Plugin(), name="broken-task")
    out = tmp_path / "run"
    result = invoke_cli("run", *TINY_RUN, "--target", "t-task", "--data-dir", str(tmp_path), "-o", str(out))
    assert_one_line_error(result, fragment)
    assert not out.exists()


def test_a_factory_that_returns_no_weighting_is_named(register_plugin, tmp_path):
    """Before: `'str' object has no attribute 'setup'` from inside the trainer, as a traceback."""
    class Plugin:
        @hookimpl
        def register_weightings(self, register):
            register("t-text", lambda: "not a weighting")

    register_plugin(Plugin(), name="text-weighting")
    out = tmp_path / "run"
    result = invoke_cli("run", *TINY_RUN, *TASKS, "--weighting", "t-text", "-o", str(out))
    assert_one_line_error(result, "weighting 't-text': its factory returned 'str', which has no setup() (a weighting "
                                  "has setup, loss, backward, parameters; see DESIGN.md)")
    assert not out.exists()
