"""mtl.study.bench's folder format (BenchFolder) and its typed plans, without training anything."""

from __future__ import annotations

import json
import math
import sys

import pytest

from mtl.errors import MtlError
from mtl.runs.config import RunConfig
from mtl.study.bench import (
    BenchFolder,
    BenchPlan,
    Network,
    PairsPlan,
    RunPlan,
    Strategy,
    load_pairs_plan,
    make_pairs_plan,
    make_plan,
    parse_strategies,
    read_bench_file,
    run_bench,
)
from mtl.study.bench.options import stage_config, strategy_config
from mtl.study.bench.record import write_pairs_file
from mtl.study.bench.strategy import ALONE

STRATEGY = {"label": "uniform", "weighting": "uniform", "sampler": "proportional", "single": False, "stage": "",
            "stage_regularizer": None}
TINY = {"backbone": "tiny", "max_steps": 2}


def a_record(**changes):
    record = {"format": "mtl-bench/1", "updated": "2026-01-01T00:00:00", "target": "rte", "aux": ["mrpc"],
              "seeds": [0, 1], "strategies": [dict(STRATEGY)],
              "run_options": {"target": "rte", "aux": ["mrpc"], "lr": 1e-4},
              "runs": [], "table": {"rows": [], "p": math.nan}}
    record.update(changes)
    return record


def test_the_file_names_of_a_bench_folder(tmp_path):
    bench = BenchFolder(tmp_path)
    assert (bench.json_path, bench.markdown_path, bench.figure_path) == (
        tmp_path / "bench.json", tmp_path / "bench.md", tmp_path / "bench.png")
    assert bench.run_folder("mamt+adaptive", 2) == tmp_path / "mamt+adaptive" / "seed-2"
    assert bench.run_folder("uniform>finetune:smart", 0) == tmp_path / "uniform_finetune_smart" / "seed-0"
    assert bench.options_file("mamt") == tmp_path / "mamt" / "run-options.json"
    assert bench.log_file("mamt", 1) == tmp_path / "mamt" / "seed-1.log"
    assert bench.network(("rte", "mrpc")) == BenchFolder(tmp_path / "rte+mrpc")


def test_bench_json_round_trips_with_nan_as_null(tmp_path):
    bench = BenchFolder(tmp_path)
    bench.write(a_record())
    text = bench.json_path.read_text()
    assert "NaN" not in text and json.loads(text)["table"]["p"] is None
    assert bench.read() == a_record(table={"rows": [], "p": None})
    assert read_bench_file(tmp_path) == bench.read() and not bench.is_pairs()
    assert bench.tasks() == ["rte", "mrpc"]


@pytest.mark.parametrize("damage, fragment", [
    (lambda d: d.update(strategies=[]), "'strategies' must be a non-empty list"),
    (lambda d: d["strategies"][0].pop("stage"), "each of 'strategies' must be an object with label"),  # older layout
    (lambda d: d["strategies"][0].update(single="no"), "strategy 'uniform': bad key 'single'"),
    (lambda d: d.update(seeds=[0, True]), "'seeds' must be a list of integers"),
    (lambda d: d.update(run_options=None), "'run_options' must be an object"),
    (lambda d: d["run_options"].update(target=None), "'run_options' must name the bench's target"),
    (lambda d: d.update(pairs=True, tasks=["rte", "rte"]), "'tasks' must be a list of two or more distinct"),
    (lambda d: d.update(runs={}), "'runs' must be a list"),
    (lambda d: d.update(table=[]), "'table' must be an object"),
])
def test_a_damaged_bench_json_is_one_error_naming_the_file(tmp_path, damage, fragment):
    record = a_record()
    damage(record)
    (tmp_path / "bench.json").write_text(json.dumps(record))
    with pytest.raises(MtlError) as error:
        BenchFolder(tmp_path).read()
    message = str(error.value)
    assert message.startswith(f"{tmp_path / 'bench.json'}: a damaged bench file (") and "\n" not in message
    assert fragment in message


@pytest.mark.parametrize("content", ['{"format": "mtl-bench/0"}', "[1, 2]", "{not json"])
def test_another_format_or_not_json_is_refused(tmp_path, content):
    (tmp_path / "bench.json").write_text(content)
    with pytest.raises(MtlError, match="bench.json"):
        BenchFolder(tmp_path).read()


def test_a_folder_to_continue_or_to_report(tmp_path):
    assert BenchFolder(tmp_path / "new").existing() is None
    assert BenchFolder(tmp_path).existing() is None  # empty
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(MtlError, match="exists and is not a bench folder"):
        BenchFolder(tmp_path).existing()
    with pytest.raises(MtlError, match="is not a folder"):
        BenchFolder(tmp_path / "notes.txt").existing()
    with pytest.raises(MtlError, match="not a bench folder"):
        BenchFolder(tmp_path).record()
    with pytest.raises(MtlError, match="no such folder"):
        BenchFolder(tmp_path / "nope").record()


def test_finished_runs_are_those_with_eval_json(tmp_path):
    bench = BenchFolder(tmp_path)
    done, stopped, bare = bench.run_folder("single", 0), bench.run_folder("single", 1), bench.run_folder("mamt", 0)
    for folder in (done, stopped):
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
    (done / "eval.json").write_text("{}")
    bare.mkdir(parents=True)
    (bare / "eval.json").write_text("{}")  # no config.json: not a run folder
    assert bench.finished("single", 0) and not bench.finished("single", 1) and not bench.finished("mamt", 1)
    assert bench.unfinished(["single", "mamt"], [0, 1]) == [("single", 1), ("mamt", 1)]
    assert [run.path for run in bench.finished_runs()] == [done]


def test_a_plan_is_typed_runs_with_their_folders_and_commands(tmp_path):
    strategies = parse_strategies(["single", "uniform", "uniform>finetune:smart"], [], [])
    plan = make_plan({"target": "demo-paraphrase", "aux": ["demo-similarity"], **TINY}, strategies, [0, 3],
                     tmp_path / "b")
    assert isinstance(plan, BenchPlan) and plan.target == "demo-paraphrase"
    runs = plan.runs()
    assert all(isinstance(run, RunPlan) for run in runs)
    assert [(run.strategy.label, run.seed) for run in runs] == [
        ("single", 0), ("single", 3), ("uniform", 0), ("uniform", 3), ("uniform>finetune:smart", 0),
        ("uniform>finetune:smart", 3)]
    single = runs[1]
    assert single.folder == tmp_path / "b" / "single" / "seed-3"
    assert single.log == tmp_path / "b" / "single" / "seed-3.log"
    assert single.command() == [sys.executable, "-m", "mtl.cli", "run", "--config",
                                str(tmp_path / "b" / "single" / "run-options.json"), "--seed", "3", "-o",
                                str(single.folder), "-q"]
    staged = runs[4]
    assert staged.parent == tmp_path / "b" / "uniform" / "seed-0"
    assert staged.command(overwrite=True)[3:6] == ["finetune", str(staged.parent), "--config"]
    assert staged.command(overwrite=True)[-1] == "--overwrite"
    assert not (tmp_path / "b").exists()  # planning writes nothing


def test_a_strategys_options_are_the_bench_options_narrowed_as_a_run_config():
    base = RunConfig(target="rte", aux=["stsb"], lr=1e-4, options={"mamt": {"psi": "0.5"}, "stsb": {"x": "1"}},
                     data={"rte.train": "a.tsv", "stsb": "glue/STS-B"}, task_limits={"stsb": 5})
    single = strategy_config(base, ALONE)
    assert isinstance(single, RunConfig) and (single.lr, single.aux, single.options) == (1e-4, [], {})
    assert single.data == {"rte.train": "a.tsv"} and single.task_limits == {}
    mamt = strategy_config(base, Strategy("mamt", "mamt", "adaptive"))
    assert (mamt.weighting, mamt.sampler, mamt.aux, mamt.task_limits) == ("mamt", "adaptive", ["stsb"], {"stsb": 5})
    assert mamt.options == {"mamt": {"psi": "0.5"}, "stsb": {"x": "1"}} and mamt.data == base.data
    assert base.weighting == "uniform" and base.aux == ["stsb"]  # the bench's own options are left as they were


def test_a_stage_is_validated_as_its_typed_fine_tuning_options():
    base = {"target": "demo-paraphrase", "aux": ["demo-similarity"], "keep": "none",
            "options": {"smart": {"steps": "2"}, "uniform": {}}, "task_limits": {"demo-similarity": 5}}
    (staged,) = parse_strategies(["uniform>finetune:smart"], [], [])
    config = stage_config(base, staged)
    assert isinstance(config, RunConfig)
    assert (config.target, config.aux, config.regularizer, config.keep) == ("demo-paraphrase", [], "smart", "none")
    assert config.options == {"smart": {"steps": "2"}} and config.task_limits == {}


def test_a_pairs_plan_is_its_networks_each_a_bench(tmp_path):
    plan = make_pairs_plan({"target": "demo-paraphrase", "aux": ["demo-similarity", "demo-sentiment"], **TINY},
                           [Strategy("uniform", "uniform", "proportional")], [0], tmp_path / "p")
    assert isinstance(plan, PairsPlan) and all(isinstance(n, Network) for n in plan.networks)
    assert [n.tasks for n in plan.networks] == [
        ("demo-paraphrase",), ("demo-similarity",), ("demo-sentiment",), ("demo-paraphrase", "demo-similarity"),
        ("demo-paraphrase", "demo-sentiment"), ("demo-similarity", "demo-sentiment")]
    assert plan.pairs == 3 and plan.runs == 6
    pair = plan.networks[5]
    assert pair.plan.output == tmp_path / "p" / "demo-similarity+demo-sentiment"
    assert (pair.plan.target, pair.plan.base["aux"]) == ("demo-similarity", ["demo-sentiment"])
    assert [s.label for s in plan.networks[0].plan.strategies] == ["single"]
    plan.output.mkdir()
    write_pairs_file(plan)
    again = load_pairs_plan(tmp_path / "p")
    assert [(n.tasks, n.plan.output, [s.label for s in n.plan.strategies]) for n in again.networks] == [
        (n.tasks, n.plan.output, [s.label for s in n.plan.strategies]) for n in plan.networks]
    assert BenchFolder(tmp_path / "p").is_pairs()


def test_run_bench_checks_jobs_and_the_launcher_before_writing(tmp_path):
    strategies = [Strategy("uniform", "uniform", "proportional")]
    with pytest.raises(MtlError, match="--jobs 0"):
        run_bench({"target": "demo-paraphrase", **TINY}, strategies, [0], tmp_path / "b", jobs=0)
    with pytest.raises(MtlError, match="unknown launcher 'nope'"):
        run_bench({"target": "demo-paraphrase", **TINY}, strategies, [0], tmp_path / "b", launcher="nope")
    assert not (tmp_path / "b").exists()
