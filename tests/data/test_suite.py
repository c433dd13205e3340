"""The demo suite's quick-start defaults: used only without task options, and never over an option given."""

from __future__ import annotations

import json

from conftest import TINY_RUN as TINY
from conftest import invoke_cli as invoke

from mtl.data.suite import DEMO_DEFAULTS, DEMO_SUITE, use_demo


def test_no_task_options_give_the_demo_suite_and_its_defaults():
    values = {"weighting": "mamt"}
    assert use_demo(values)
    assert values == {"weighting": "mamt", "target": DEMO_SUITE["target"], "aux": DEMO_SUITE["aux"], **DEMO_DEFAULTS}


def test_options_given_win_over_the_demo_defaults():
    values = {"epochs": 5, "lr": None}
    assert use_demo(values)
    assert values["epochs"] == 5 and values["lr"] == DEMO_DEFAULTS["lr"]


def test_a_run_with_tasks_keeps_the_ordinary_defaults():
    for values in ({"target": "rte"}, {"target": "rte", "aux": ["mrpc"]}, {"aux": ["mrpc"]}):
        before = dict(values)
        assert not use_demo(values)
        assert values == before


def test_mtl_run_records_the_demo_defaults_and_the_options_given(tmp_path):
    out = tmp_path / "run"
    result = invoke("run", *TINY, "--epochs", "1", "-o", str(out))
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["target"] == DEMO_SUITE["target"] and config["aux"] == DEMO_SUITE["aux"]
    assert config["lr"] == DEMO_DEFAULTS["lr"]  # not given: the demo's
    assert config["epochs"] == 1 and config["batch_size"] == 8  # given: the user's


def test_mtl_run_with_a_target_keeps_the_run_defaults(tmp_path):
    out = tmp_path / "run"
    result = invoke("run", "--target", "demo-sentiment", *TINY, "-o", str(out))
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["lr"] == 5e-5 and config["epochs"] == 3


def test_a_bench_of_the_demo_suite_gives_every_run_the_demo_defaults(tmp_path):
    from mtl.study.bench import make_plan, parse_strategies

    plan = make_plan({"backbone": "tiny", "epochs": 1}, parse_strategies(["single", "mamt+adaptive"], [], []), [0],
                     tmp_path / "bench")
    assert plan.base["target"] == DEMO_SUITE["target"] and plan.base["aux"] == DEMO_SUITE["aux"]
    assert plan.base["epochs"] == 1 and plan.base["lr"] == DEMO_DEFAULTS["lr"]
    assert plan.base["batch_size"] == DEMO_DEFAULTS["batch_size"]


def test_a_demo_run_names_the_bench_that_compares_it_with_the_target_alone(tmp_path):
    result = invoke("run", *TINY, "--weighting", "mamt", "--sampler", "adaptive", "-o", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    assert "mtl bench --strategy single,mamt+adaptive --seeds 0,1,2" in result.stderr
    other = invoke("run", "--target", "demo-sentiment", *TINY, "-o", str(tmp_path / "other"))
    assert "mtl bench" not in other.stderr
