"""Plugin options: conversion of text and config values to annotated types, and the errors."""

from __future__ import annotations

from typing import Literal, Optional

import pytest

import mtl
from mtl import Weighting, hookimpl
from mtl.contract.options import convert, describe
from mtl.errors import OptionError


class Configurable(Weighting):
    def __init__(self, psi: float = 0.8, k: int | None = None, metric: Literal["cosine", "maxnorm"] = "cosine",
                 weights: dict[str, float] | None = None, layers: int = 1, tag: str = "x", on: bool = False,
                 tasks: list[str] = ()):
        super().__init__()
        if not 0 <= psi <= 1:
            raise ValueError(f"psi must be in [0, 1] (got {psi})")
        self.psi, self.k, self.metric, self.weights, self.layers, self.tag, self.on, self.tasks = (
            psi, k, metric, weights, layers, tag, on, tasks)


@pytest.fixture
def configurable(register_plugin):
    class Plugin:
        @hookimpl
        def register_weightings(self, register):
            register("configurable", Configurable)

    register_plugin(Plugin())


@pytest.mark.parametrize("value, annotation, expected", [
    ("3", int, 3), (3.0, int, 3), ("0.5", float, 0.5), (2, float, 2.0), ("1e-3", float, 1e-3),
    ("true", bool, True), ("No", bool, False), (True, bool, True),
    ("none", Optional[int], None), ("7", Optional[int], 7), (None, Optional[int], None),
    ("maxnorm", Literal["cosine", "maxnorm"], "maxnorm"),
    ("a,b, c", list[str], ["a", "b", "c"]), ('["a", "b"]', list[str], ["a", "b"]), ("1,2", list[int], [1, 2]),
    ("rte:6,stsb:1", dict[str, float], {"rte": 6.0, "stsb": 1.0}),
    ('{"rte": 2}', dict[str, float], {"rte": 2.0}), ({"rte": "3"}, dict[str, float], {"rte": 3.0}),
])
def test_convert(value, annotation, expected):
    result = convert(value, annotation)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize("value, annotation", [
    ("abc", int), ("1.5", int), (1.5, int), ("x", float), ("maybe", bool), ("euclid", Literal["cosine", "maxnorm"]),
    ("rte", dict[str, float]), ("rte:x", dict[str, float]), ("[1,", list[int]), (True, int),
])
def test_convert_rejects(value, annotation):
    with pytest.raises(ValueError):
        convert(value, annotation)


def test_optional_option_keeps_the_specific_reason():
    with pytest.raises(ValueError, match="^expected an integer, got 'x'$"):
        convert("x", Optional[int])
    with pytest.raises(ValueError, match="^expected int \\| float, got 'x'$"):
        convert("x", int | float)


def test_describe_lists_options_with_types_and_defaults():
    options = {o.name: o for o in describe(Configurable)}
    assert list(options) == ["psi", "k", "metric", "weights", "layers", "tag", "on", "tasks"]
    assert options["psi"].type_name == "float" and options["psi"].default == 0.8
    assert options["metric"].type_name == "cosine|maxnorm"
    assert options["k"].type_name == "int | None"
    assert not any(o.required for o in options.values())


def test_create_converts_every_option(configurable):
    w = mtl.create("weighting", "configurable", psi="0.5", k="3", metric="maxnorm", weights="rte:6", on="yes")
    assert (w.psi, w.k, w.metric, w.weights, w.on) == (0.5, 3, "maxnorm", {"rte": 6.0}, True)


def test_unknown_option_names_plugin_and_suggests(configurable):
    with pytest.raises(OptionError) as info:
        mtl.create("weighting", "configurable", pis="0.5")
    assert str(info.value).startswith("weighting 'configurable': unknown option 'pis'")
    assert "Did you mean 'psi'" in str(info.value)


def test_bad_value_names_plugin_and_key(configurable):
    with pytest.raises(OptionError, match=r"weighting 'configurable': option 'layers': expected an integer, got 'two'"):
        mtl.create("weighting", "configurable", layers="two")


def test_value_rejected_by_the_plugin_names_it(configurable):
    with pytest.raises(OptionError, match=r"weighting 'configurable': psi must be in \[0, 1\] \(got 1.5\)"):
        mtl.create("weighting", "configurable", psi="1.5")


def test_tiny_backbone_validates_its_options():
    with pytest.raises(OptionError, match="backbone 'tiny': hidden_size \\(30\\) must be a multiple of heads \\(4\\)"):
        mtl.create("backbone", "tiny", hidden_size="30", heads="4")


def test_run_config_values_are_checked_against_the_option_types():
    """RunConfig's annotations decide, with the plugin options' converter: text that spells a value of the type is
    that value, a tuple a list; anything else is a one-line OptionError naming the option."""
    from mtl.errors import OptionError
    from mtl.runs.config import RunConfig, convert_option

    config = RunConfig(target="rte", aux=("mrpc",), lr=1, warmup="0.2", report_to=("tensorboard",), epochs="2",
                       skip_nonfinite="yes", task_limits={"rte": "10"}).validate()
    assert config.aux == ["mrpc"] and config.lr == 1.0 and isinstance(config.lr, float) and config.warmup == 0.2
    assert config.report_to == ["tensorboard"] and config.epochs == 2 and config.skip_nonfinite is True
    assert config.task_limits == {"rte": 10}
    for name, value, message in [
        ("epochs", 2.5, "--epochs: expected an integer, got 2.5"),
        ("epochs", True, "--epochs: expected an integer, got True"),
        ("skip_nonfinite", "maybe", "--skip-nonfinite: expected a boolean (true/false), got 'maybe'"),
        ("lr", "fast", "--lr: expected a number, got 'fast'"),
        ("task_limits", {"rte": "many"}, "--limit: expected an integer, got 'many'"),
        ("teachers", {"rte": {"a": 1}}, "--teacher: expected a list, got {'a': 1}"),
        ("weighting", None, "--weighting: expected str, got None"),
    ]:
        with pytest.raises(OptionError) as info:
            convert_option(name, value)
        assert str(info.value) == message
        with pytest.raises(OptionError) as info:
            RunConfig(**{name: value})
        assert str(info.value) == message
    with pytest.raises(OptionError, match="^run.yaml: max-steps: expected an integer, got 'many'$"):
        convert_option("max_steps", "many", label="run.yaml: max-steps")
