"""`mtl bench` and `mtl report`: a real grid of tiny runs (each its own process), its table, and resuming it."""

from __future__ import annotations

import json
import math
import shutil
import statistics

import pytest
from conftest import assert_one_line_error as one_line_error
from scipy import stats
from typer.testing import CliRunner

from mtl.cli import app

runner = CliRunner()
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TASKS = ["--target", "demo-similarity", "--aux", "demo-sentiment"]  # a regression target: metrics vary by seed
TINY = ["--backbone", "tiny", "--max-steps", "4", "--batch-size", "8", "--max-length", "32", "--eval-limit", "32"]
STRATEGIES = ["single", "uniform"]
SEEDS = [0, 1]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def assert_one_line_error(result, *fragments):
    """conftest's one-line error check, with the exact exit status `mtl bench` uses."""
    assert result.exit_code == 1, result.output
    one_line_error(result, *fragments)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """`mtl bench --strategy single,uniform --seeds 0,1` over tiny runs: four `mtl run` processes."""
    out = tmp_path_factory.mktemp("bench") / "b"
    result = invoke("bench", "--strategy", ",".join(STRATEGIES), "--seeds", "0,1", *TASKS, *TINY, "-o", out)
    assert result.exit_code == 0, result.output
    return out, result


def per_run_metrics(out):
    """{strategy: {metric: [value per seed]}} read independently from the runs' eval.json files."""
    values = {}
    for strategy in STRATEGIES:
        for seed in SEEDS:
            evaluation = json.loads((out / strategy / f"seed-{seed}" / "eval.json").read_text())
            for metric, value in evaluation["demo-similarity"]["dev"].items():
                values.setdefault(strategy, {}).setdefault(metric, []).append(value)
    return values


def test_bench_writes_json_markdown_and_figure(bench):
    out, result = bench
    data = json.loads((out / "bench.json").read_text())
    assert [s["label"] for s in data["strategies"]] == STRATEGIES
    assert data["strategies"][0]["single"] and not data["strategies"][1]["single"]
    assert len(data["runs"]) == 4 and {r["status"] for r in data["runs"]} == {"finished"}
    for run in data["runs"]:
        assert run["eval"] and run["summary"]["train_seconds"] > 0
        assert run["config"]["seed"] == run["seed"] and run["config"]["backbone"] == "tiny"
        assert run["config"]["aux"] == ([] if run["strategy"] == "single" else ["demo-sentiment"])

    expected = per_run_metrics(out)
    table = data["table"]
    assert table["target"] == "demo-similarity" and table["split"] == "dev" and table["reference"] == "single"
    assert table["metrics"] == ["pearson", "spearman"] and table["primary"] == "pearson"
    rows = {row["strategy"]: row for row in table["rows"]}
    for strategy in STRATEGIES:
        for metric, values in expected[strategy].items():
            got = rows[strategy]["metrics"][metric]
            assert got["values"] == pytest.approx(values)
            assert got["mean"] == pytest.approx(statistics.mean(values))
            assert got["std"] == pytest.approx(statistics.stdev(values))
    for metric in table["metrics"]:
        uniform, single = expected["uniform"][metric], expected["single"][metric]
        got = rows["uniform"]["metrics"][metric]
        assert got["delta"] == pytest.approx(statistics.mean(uniform) - statistics.mean(single))
        p = stats.ttest_rel(uniform, single).pvalue
        assert (got["p"] is None) if math.isnan(p) else got["p"] == pytest.approx(p)
    summaries = [json.loads((out / "uniform" / f"seed-{s}" / "summary.json").read_text()) for s in SEEDS]
    assert rows["uniform"]["train_seconds"] == pytest.approx(statistics.mean(s["train_seconds"] for s in summaries))
    assert rows["uniform"]["peak_memory_mb"] == pytest.approx(max(s["peak_memory_mb"] for s in summaries))

    markdown = (out / "bench.md").read_text()
    mean, std = rows["uniform"]["metrics"]["pearson"]["mean"], rows["uniform"]["metrics"]["pearson"]["std"]
    assert f"| uniform | 2 | {mean:.4f} ± {std:.4f} |" in markdown
    assert "| single | 2 |" in markdown and "(reference)" in markdown
    assert f"{mean:.4f} ± {std:.4f}" in result.stdout and "(reference)" in result.stdout
    png = (out / "bench.png").read_bytes()
    assert png[:8] == PNG_MAGIC and len(png) > 5000


def test_report_reproduces_the_table(bench):
    out, result = bench
    markdown = (out / "bench.md").read_text()
    (out / "bench.md").unlink()
    (out / "bench.png").unlink()
    report = invoke("report", out)
    assert report.exit_code == 0, report.output
    assert report.stdout == result.stdout
    assert (out / "bench.md").read_text() == markdown
    assert (out / "bench.png").read_bytes()[:8] == PNG_MAGIC


def test_report_without_bench_json_finds_the_run_folders(bench, tmp_path):
    out, result = bench
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "bench.json").unlink()
    report = invoke("report", copy)
    assert report.exit_code == 0, report.output
    assert report.stdout == result.stdout  # single first, then the others; same numbers


def test_report_of_a_folder_that_is_no_bench(tmp_path):
    assert_one_line_error(invoke("report", tmp_path), "not a bench folder")
    assert_one_line_error(invoke("report", tmp_path / "nope"), "no such folder")


def test_a_stopped_bench_continues_with_only_the_unfinished_run(bench, tmp_path):
    out, _ = bench
    copy = tmp_path / "b"
    shutil.copytree(out, copy)
    (copy / "uniform" / "seed-1" / "eval.json").unlink()  # stopped during this run
    kept = {(s, seed): (copy / s / f"seed-{seed}" / "eval.json").stat().st_mtime_ns
            for s in STRATEGIES for seed in SEEDS if (s, seed) != ("uniform", 1)}
    result = invoke("bench", "--strategy", ",".join(STRATEGIES), "--seeds", "0,1", *TASKS, *TINY, "-o", copy)
    assert result.exit_code == 0, result.output
    assert result.stderr.count("finished before, kept") == 3
    assert "uniform seed 1: running again" in result.stderr and result.stderr.count(": running") == 1
    for (s, seed), mtime in kept.items():
        assert (copy / s / f"seed-{seed}" / "eval.json").stat().st_mtime_ns == mtime
    assert (copy / "uniform" / "seed-1" / "eval.json").exists()
    data = json.loads((copy / "bench.json").read_text())
    assert {r["status"] for r in data["runs"]} == {"finished"}
    before = json.loads((out / "uniform" / "seed-1" / "eval.json").read_text())
    after = json.loads((copy / "uniform" / "seed-1" / "eval.json").read_text())
    assert after["demo-similarity"]["dev"] == pytest.approx(before["demo-similarity"]["dev"])  # same seed, same run


def test_other_run_options_in_an_existing_bench_are_refused(bench):
    out, _ = bench
    before = (out / "bench.json").read_text()
    result = invoke("bench", "--strategy", ",".join(STRATEGIES), "--seeds", "0,1", *TASKS, *TINY, "--lr", "1e-4",
                    "-o", out)
    assert_one_line_error(result, "other run options", "lr")
    assert (out / "bench.json").read_text() == before


@pytest.mark.parametrize("args, fragments", [
    (["--strategy", "mamtt"], ["unknown strategy 'mamtt'", "Did you mean 'mamt'"]),
    (["--strategy", "single,mamt+nope"], ["unknown sampler 'nope'"]),
    (["--strategy", "a+b+c"], ["unknown strategy 'a+b+c'"]),
    (["--weighting", "uniform,unifrm"], ["unknown weighting 'unifrm'", "Did you mean 'uniform'"]),
    (["--weighting", "uniform", "--sampler", "propotional"], ["unknown sampler 'propotional'"]),
    ([], ["nothing to compare"]),
    (["--strategy", "uniform", "--seeds", "0,x"], ["--seeds '0,x'"]),
    (["--strategy", "mamt", "--set", "mamt.psii=0.5"], ["unknown option 'psii'"]),
    (["--strategy", "uniform", "--target", "rtee"], ["unknown task 'rtee'"]),
    (["--strategy", "uniform", "--lr", "-1"], ["--lr must be a positive number"]),
    (["--strategy", "uniform", "--precision", "fp8"], ["--precision must be one of"]),
    (["--strategy", "uniform", "--checkpoint-every", "0"], ["--checkpoint-every must be >= 1"]),
    (["--strategy", "uniform", "--data-dir", "/nonexistent/glue"], ["/nonexistent/glue"]),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, fragments):
    out = tmp_path / "b"
    result = invoke("bench", *TINY, *args, "-o", out)
    assert_one_line_error(result, *fragments)
    assert not out.exists()


def test_output_folder_that_is_not_a_bench_is_kept(tmp_path):
    (tmp_path / "keep.txt").write_text("x")
    assert_one_line_error(invoke("bench", "--strategy", "uniform", *TINY, "-o", tmp_path), "not a bench folder")
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_strategy_grid_order_and_labels():
    from mtl.study.bench import parse_strategies

    labels = [s.label for s in parse_strategies(["single", "mamt"], ["uniform", "mamt"], ["proportional", "adaptive"])]
    assert labels == ["single", "mamt", "uniform+proportional", "uniform+adaptive", "mamt+proportional",
                      "mamt+adaptive"]
    only_samplers = parse_strategies([], [], ["uniform"], base_weighting="mamt")
    assert [(s.label, s.weighting, s.sampler) for s in only_samplers] == [("mamt+uniform", "mamt", "uniform")]
    (plain,) = parse_strategies([], ["mmoe"], [], base_sampler="adaptive")
    assert (plain.weighting, plain.sampler) == ("mmoe", "adaptive")


def test_plugin_options_go_only_to_the_strategies_that_use_them():
    from mtl.study.bench import Strategy, strategy_values

    base = {"target": "rte", "aux": ["stsb"], "options": {"mamt": {"psi": "0.5"}, "stsb": {"x": "1"},
                                                           "tiny": {"layers": "1"}}}
    mamt = strategy_values(base, Strategy("mamt", "mamt", "adaptive"))
    assert mamt["options"] == base["options"] and mamt["weighting"] == "mamt" and mamt["sampler"] == "adaptive"
    uniform = strategy_values(base, Strategy("uniform", "uniform", "proportional"))
    assert uniform["options"] == {"stsb": {"x": "1"}, "tiny": {"layers": "1"}}
    single = strategy_values(base, Strategy("single", "uniform", "proportional", single=True))
    assert single["aux"] == [] and single["options"] == {"tiny": {"layers": "1"}}


def test_a_finetune_stage_sits_beside_its_multi_task_strategy(tmp_path):
    """`uniform` and `uniform>finetune:smart` in one table: the stage fine-tunes each seed's `uniform` run."""
    out = tmp_path / "b"
    result = invoke("bench", "--strategy", "uniform,uniform>finetune:smart", "--seeds", "0", *TASKS, *TINY,
                    "--set", "smart.steps=2", "-o", out)
    assert result.exit_code == 0, result.output
    staged = out / "uniform_finetune_smart" / "seed-0"
    config = json.loads((staged / "config.json").read_text())
    assert config["parent"] == str((out / "uniform" / "seed-0").resolve())
    assert config["aux"] == [] and config["regularizer"] == "smart" and config["options"]["smart"] == {"steps": "2"}
    # the multi-task run has no regularizer: the smart options went only to the stage
    parent = json.loads((out / "uniform" / "seed-0" / "config.json").read_text())
    assert parent["regularizer"] is None and "smart" not in parent["options"]
    record = json.loads((out / "bench.json").read_text())
    rows = {r["strategy"]: r for r in record["table"]["rows"]}
    expected = json.loads((staged / "eval.json").read_text())["demo-similarity"]["dev"]["pearson"]
    assert rows["uniform>finetune:smart"]["metrics"]["pearson"]["values"] == [expected]


def test_a_stage_without_its_strategy_runs_the_multi_task_run_first(tmp_path):
    out = tmp_path / "b"
    result = invoke("bench", "--strategy", "single,siwlm>finetune", "--seeds", "0", *TASKS, *TINY, "-o", out)
    assert result.exit_code == 0, result.output
    assert json.loads((out / "siwlm" / "seed-0" / "config.json").read_text())["weighting"] == "siwlm"
    config = json.loads((out / "siwlm_finetune" / "seed-0" / "config.json").read_text())
    assert config["parent"] == str((out / "siwlm" / "seed-0").resolve()) and config["regularizer"] is None
    assert [r["strategy"] for r in json.loads((out / "bench.json").read_text())["table"]["rows"]] == [
        "single", "siwlm>finetune"]


@pytest.mark.parametrize("spec, fragments", [
    ("uniform>finetun", ["a stage is written SPEC>finetune"]),
    ("uniform>finetune:smrt", ["unknown regularizer 'smrt'"]),
    ("single>finetune", ["needs a multi-task strategy"]),
    ("mamtt>finetune", ["unknown strategy 'mamtt'"]),
])
def test_bad_stage_specs_are_one_line_errors(tmp_path, spec, fragments):
    result = invoke("bench", "--strategy", spec, *TINY, "-o", tmp_path / "b")
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "b").exists()


# ---------------------------------------------------------------------------------------------- --pairs
PAIR = ("demo-similarity", "demo-sentiment")  # the target first: the pair's run has it as its target


@pytest.fixture(scope="module")
def pairs_bench(tmp_path_factory):
    """`mtl bench --pairs` over two tasks, one seed: each task alone and the pair, three `mtl run` processes."""
    out = tmp_path_factory.mktemp("pairs") / "p"
    result = invoke("bench", "--pairs", "--seeds", "0", *TASKS, *TINY, "-o", out)
    assert result.exit_code == 0, result.output
    return out, result


def primary_metric(run_folder, task):
    """The first metric of the task's first split, read from the run's own eval.json."""
    evaluation = json.loads((run_folder / "eval.json").read_text())
    return next(iter(next(iter(evaluation[task].values())).values()))


def test_pairs_trains_every_task_alone_and_every_pair(pairs_bench):
    out, result = pairs_bench
    similarity, sentiment = PAIR
    folders = {(similarity,): out / similarity / "single" / "seed-0", (sentiment,): out / sentiment / "single" / "seed-0",
               PAIR: out / f"{similarity}+{sentiment}" / "uniform" / "seed-0"}
    for network, folder in folders.items():
        config = json.loads((folder / "config.json").read_text())
        assert (config["target"], config["aux"]) == (network[0], list(network[1:]))
        assert config["weighting"] == "uniform" and config["backbone"] == "tiny" and config["seed"] == 0
        assert set(json.loads((folder / "eval.json").read_text())) == set(network)  # every task of the run evaluated
        assert json.loads((folder.parent.parent / "bench.json").read_text())["table"]["target"] == network[0]
    record = json.loads((out / "bench.json").read_text())
    assert record["pairs"] and record["tasks"] == list(PAIR) and record["seeds"] == [0]
    assert [n["tasks"] for n in record["networks"]] == [[similarity], [sentiment], list(PAIR)]
    scores = record["table"]["scores"]["uniform"]
    assert record["table"]["metrics"] == {similarity: "dev pearson", sentiment: "dev accuracy"}
    for task in PAIR:
        assert scores[task]["alone"] == pytest.approx(primary_metric(folders[(task,)], task))
        other = next(t for t in PAIR if t != task)
        assert scores[task]["with"][other] == pytest.approx(primary_metric(folders[PAIR], task))
    alone = scores[sentiment]["alone"]
    cell = f"{scores[sentiment]['with'][similarity]:.4f} ({scores[sentiment]['with'][similarity] - alone:+.4f})"
    assert cell in result.stdout and cell in (out / "bench.md").read_text()
    assert "3 runs" in result.stderr and f"mtl group {out} --budget B" in result.stderr


def test_mtl_group_reads_a_pairs_bench(pairs_bench):
    out, _ = pairs_bench
    similarity, sentiment = PAIR
    score = {(task, network): primary_metric(out / "+".join(network) / strategy / "seed-0", task)
             for network, strategy in (((similarity,), "single"), ((sentiment,), "single"), (PAIR, "uniform"))
             for task in network}
    for budget in (1, 2):
        result = invoke("group", out, "--budget", budget, "--json")
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert data["kind"] == "bench" and data["candidates"] == 3 and data["tasks"] == list(PAIR)
        if budget == 1:  # one network for both tasks: the pair
            expected = score[similarity, PAIR] + score[sentiment, PAIR]
        else:  # each task by the better of alone and the pair
            expected = sum(max(score[t, (t,)], score[t, PAIR]) for t in PAIR)
        assert data["objective"] == pytest.approx(expected)
    pair = json.loads(invoke("group", out, "--budget", 1, "--json").stdout)["networks"][0]
    options = out / f"{similarity}+{sentiment}" / "uniform" / "run-options.json"
    assert pair["command"] == f"mtl run --config {options} --target {similarity} --aux {sentiment}"
    assert json.loads(options.read_text())["aux"] == [sentiment]


def test_report_of_a_pairs_bench_reproduces_it(pairs_bench, tmp_path):
    out, result = pairs_bench
    copy = tmp_path / "p"
    shutil.copytree(out, copy)
    (copy / "bench.md").unlink()
    report = invoke("report", copy)
    assert report.exit_code == 0, report.output
    assert report.stdout == result.stdout
    assert (copy / "bench.md").read_text() == (out / "bench.md").read_text().replace(str(out), str(copy))


def test_a_stopped_pairs_bench_continues_with_only_the_unfinished_run(pairs_bench, tmp_path):
    out, _ = pairs_bench
    copy = tmp_path / "p"
    shutil.copytree(out, copy)
    stopped = copy / "demo-sentiment" / "single" / "seed-0"
    (stopped / "eval.json").unlink()
    result = invoke("bench", "--pairs", "--seeds", "0", *TASKS, *TINY, "-o", copy)
    assert result.exit_code == 0, result.output
    assert result.stderr.count("finished before, kept") == 2
    assert "demo-sentiment: [1/1] single seed 0: running again" in result.stderr
    assert result.stderr.count(": running") == 1
    assert json.loads((stopped / "eval.json").read_text()) == json.loads(
        (out / "demo-sentiment" / "single" / "seed-0" / "eval.json").read_text())  # same seed, same run


def test_a_pairs_bench_and_a_plain_one_do_not_mix(pairs_bench, tmp_path):
    out, _ = pairs_bench
    before = (out / "bench.json").read_text()
    assert_one_line_error(invoke("bench", "--strategy", "uniform", "--seeds", "0", *TASKS, *TINY, "-o", out),
                          "holds a --pairs bench")
    assert_one_line_error(invoke("bench", "--pairs", "--seeds", "0", *TASKS, *TINY, "--lr", "1e-4", "-o", out),
                          "other run options", "lr")
    assert (out / "bench.json").read_text() == before
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "bench.json").write_text(json.dumps({"format": "mtl-bench/1", "target": "demo-similarity"}))
    assert_one_line_error(invoke("bench", "--pairs", *TASKS, *TINY, "-o", plain), "holds a bench without --pairs")


@pytest.mark.parametrize("args, fragments", [
    (["--target", "demo-similarity"], ["--pairs needs at least two tasks"]),
    ([*TASKS, "--strategy", "uniform>finetune"], ["fine-tuning stage"]),
    ([*TASKS, "--strategy", "single"], ["give the pairs' multi-task strategy"]),
    ([*TASKS, "--strategy", "unifrm"], ["unknown strategy 'unifrm'"]),
])
def test_bad_pairs_benches_are_one_line_and_write_nothing(tmp_path, args, fragments):
    out = tmp_path / "p"
    assert_one_line_error(invoke("bench", "--pairs", *TINY, *args, "-o", out), *fragments)
    assert not out.exists()
