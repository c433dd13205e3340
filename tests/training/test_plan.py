"""RunPlan.build: the one validation phase of a run (options, plugins, data sources), writing nothing."""

from __future__ import annotations

import pytest

from mtl.errors import MtlError, OptionError
from mtl.runs.config import RunConfig
from mtl.training.plan import RunPlan, Source


def test_a_plan_builds_the_plugins_and_sources_and_writes_nothing(tmp_path):
    out = tmp_path / "run"
    config = RunConfig(target="demo-paraphrase", aux="demo-similarity", weighting="uw", sampler="all",
                       data={"demo-similarity.train": str(tmp_path / "sim.tsv")}, output=str(out))
    plan = RunPlan.build(config)
    assert config.aux == ["demo-similarity"]  # normalised once, here
    assert list(plan.tasks) == ["demo-paraphrase", "demo-similarity"]
    assert callable(plan.weighting.backward) and plan.regularizer is None and plan.callbacks == {}
    assert plan.sources[("demo-similarity", "train")] == Source(str(tmp_path / "sim.tsv"), None)
    assert plan.sources[("demo-paraphrase", "train")] == Source(None, None)  # the task's own data
    assert set(plan.plugins()) == {"weighting", "sampler"}
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("options, message", [
    (dict(target="demo-paraphrase", lr_schedule="step"), "--lr-schedule: expected one of linear, cosine, constant"),
    (dict(target="demo-paraphrase", grad_accum=0), "--grad-accum must be >= 1"),
    (dict(target="demo-paraphrase", patience=0), "--patience must be >= 1"),
    (dict(target="demo-paraphrase", callbacks=["nope"]), "callback 'nope'"),
    (dict(target="demo-paraphrase", data={"demo-sentiment.train": "x"}), "task 'demo-sentiment' is not in this run"),
])
def test_a_wrong_option_is_one_line_before_anything_is_built(options, message):
    with pytest.raises((OptionError, MtlError), match=message):
        RunPlan.build(RunConfig(**options))


def test_tasks_without_a_target_are_checked_as_a_run_of_the_first():
    config = RunConfig(aux=["demo-similarity", "demo-sentiment"])
    with pytest.raises(OptionError, match="--aux needs a --target"):
        RunPlan.build(config)
    plan = RunPlan.build(config, target_optional=True)
    assert config.target is None and list(plan.tasks) == ["demo-similarity", "demo-sentiment"]
