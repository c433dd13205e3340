"""The callback contract (mtl.Callback): a third-party callback package used by name, its events in order, its
state across a resume; early stopping and evaluation every N steps, which are callbacks themselves."""

from __future__ import annotations

import importlib.metadata
import json

import pytest
from conftest import install_fixture_package

import mtl
from mtl.contract.callback import TrainerControl, TrainerState
from mtl.errors import MtlError
from mtl.runs.config import RunConfig
from mtl.training.events import Events
from mtl.training.trainer import Trainer


def tiny(out, **overrides) -> RunConfig:
    values = dict(target="demo-paraphrase", aux=["demo-similarity"], backbone="tiny", batch_size=8, max_length=32,
                  limit=32, eval_limit=16, seed=1, log_every=1, output=str(out))
    values.update(overrides)
    return RunConfig(**values)


@pytest.fixture(scope="module")
def callback_package(tmp_path_factory):
    return install_fixture_package("mtl-callback-plugin", tmp_path_factory)


@pytest.fixture
def event_log(callback_package, monkeypatch, register_plugin):
    """The fixture package's entry point (group ``mtl``) found and loaded as mtl's loader loads one."""
    monkeypatch.syspath_prepend(str(callback_package))
    importlib.invalidate_caches()
    (entry,) = [ep for ep in importlib.metadata.entry_points(group="mtl")
                if ep.dist is not None and ep.dist.name == "mtl-callback-plugin"]
    register_plugin(entry.load(), name=entry.name)
    assert "event-log" in mtl.available("callback")


class Interrupt(mtl.Callback):
    """Stands in for a kill: Ctrl-C at the beginning of step ``at``."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_step_begin(self, state, control, **kwargs):
        if state.step == self.at:
            raise KeyboardInterrupt


def events(run) -> list[tuple[str, int]]:
    return [(e["event"], e["step"]) for e in map(json.loads, (run / "events.jsonl").read_text().splitlines())]


@pytest.mark.slow
def test_a_callback_package_sees_the_events_in_order(event_log, tmp_path):
    out = tmp_path / "run"
    Trainer(tiny(out, max_steps=4, eval_every=2, checkpoint_every=4, callbacks=["event-log"])).train()
    steps = lambda a, b: [e for s in range(a, b) for e in (("step_begin", s), ("step_end", s + 1))]  # noqa: E731
    assert events(out) == ([("train_begin", 0)] + steps(0, 2) + [("evaluate", 2)] + steps(2, 4)
                           + [("evaluate", 4), ("save", 4), ("train_end", 4)])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["event-log"] == {"steps": 4, "evaluations": 2, "saves": 1}
    assert json.loads((out / "config.json").read_text())["callbacks"] == ["event-log"]


@pytest.mark.slow
def test_a_resumed_run_continues_the_callbacks_state(event_log, tmp_path):
    options = dict(max_steps=6, eval_every=2, checkpoint_every=2, callbacks=["event-log"])
    whole = Trainer(tiny(tmp_path / "whole", **options)).train()
    out = tmp_path / "stopped"
    with pytest.raises(MtlError, match="stopped by"):
        Trainer(tiny(out, **options), callbacks={"interrupt": Interrupt(at=3)}).train()
    assert not (out / "summary.json").exists()
    resumed = Trainer.resuming(out).train()
    assert resumed["summary"]["event-log"] == whole["summary"]["event-log"] == {"steps": 6, "evaluations": 3,
                                                                                 "saves": 3}
    assert resumed["eval"] == whole["eval"]
    assert (out / "eval.json").read_text() == (tmp_path / "whole" / "eval.json").read_text()
    # the events after the checkpoint of step 2 happened twice: once before the kill, once after the resume
    assert events(out).count(("train_begin", 2)) == 1 and events(out).count(("step_end", 3)) == 2


def test_an_unknown_callback_is_a_one_line_error(tmp_path):
    with pytest.raises(MtlError, match="callback 'no-such-callback'"):
        Trainer(tiny(tmp_path / "run", callbacks=["no-such-callback"])).prepare()


def test_the_state_is_read_only_and_unused_events_have_no_listeners():
    state = TrainerState(step=3)
    with pytest.raises(AttributeError, match="read-only"):
        state.step = 4

    class OnlyEvaluate(mtl.Callback):
        def on_evaluate(self, state, control, **kwargs):
            control.should_stop = True

    dispatch = Events({"only": OnlyEvaluate()})
    assert not dispatch.listening_step_begin and not dispatch.listening_step_end and dispatch.loss_hooks == ()
    dispatch.step_begin(batches={})  # nothing listens: nothing is called
    dispatch.fire("on_evaluate", metrics={}, value=0.0)
    assert dispatch.control == TrainerControl(should_stop=True)


# ------------------------------------------------------------------------------------------------ built-in callbacks
@pytest.mark.slow
def test_eval_every_evaluates_at_those_steps_and_selects_the_best_among_them(tmp_path):
    out = tmp_path / "run"
    result = Trainer(tiny(out, max_steps=7, eval_every=3, lr=1e-3)).train()
    summary = result["summary"]
    assert [e["step"] + 1 for e in summary["epochs"]] == [3, 6, 7]  # steps done at each evaluation (and the last)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] + 1 for r in records if any(k.startswith("eval.") for k in r)] == [3, 6, 7]
    best = max(summary["epochs"], key=lambda e: e["value"])
    assert summary["best_step"] == best["step"] and summary["selection_value"] == best["value"]


@pytest.mark.slow
def test_patience_stops_after_that_many_evaluations_without_improvement(tmp_path):
    # lr 0: the model never changes, so no evaluation after the first is better
    result = Trainer(tiny(tmp_path / "run", max_steps=20, eval_every=2, patience=3, lr=1e-12)).train()
    summary = result["summary"]
    assert [e["step"] + 1 for e in summary["epochs"]] == [2, 4, 6, 8]  # the first, then three without improvement
    assert summary["steps_done"] == 8 and summary["best_step"] == 1
    assert summary["early_stopping"] == {"patience": 3, "stopped": True, "stopped_at_step": 8,
                                         "evaluations_without_improvement": 3}
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["early_stopping"]["stopped"] is True


class EveryN(mtl.Callback):
    """Counts the steps it is told to look at; its option ``every`` comes from ``--set every-n.every=N``."""

    def __init__(self, every: int = 1) -> None:
        self.every, self.seen = every, []

    def on_step_end(self, state, control, **kwargs):
        if state.step % self.every == 0:
            self.seen.append(state.step)


def test_set_routes_options_to_a_callback_of_the_run(register_plugin):
    import types

    register_plugin(types.SimpleNamespace(register_callbacks=mtl.hookimpl(
        lambda register: register("every-n", EveryN, description="test"))), name="every-n-plugin")
    config = RunConfig(target="demo-paraphrase", callbacks=["every-n"], options={"every-n": {"every": "3"}})
    assert config.plugin_options()[("callback", "every-n")] == {"every": "3"}
    assert mtl.create("callback", "every-n", every="3").every == 3  # converted to the factory's annotation
    with pytest.raises(MtlError, match="callback 'every-n'"):  # a name that is not in the run says what is
        RunConfig(target="demo-paraphrase", callbacks=["every-n"], options={"nope": {"x": 1}}).plugin_options()
