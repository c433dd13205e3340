"""`mtl bench` and `mtl report`: a real grid of tiny runs (each its own process), its table, and resuming it."""

from __future__ import annotations

import json
import math
import shutil
import statistics

import numpy as np
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


@pytest.mark.slow
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


def stored(run_folder):
    """(predictions, labels) of the target's dev split, read from predictions.safetensors with safetensors alone."""
    from safetensors.numpy import load_file

    tensors = load_file(str(run_folder / "predictions.safetensors"))
    return tensors["demo-similarity.dev"], tensors["demo-similarity.dev:labels"]


def pearson(predictions, labels):
    if np.ptp(predictions) == 0:
        return 0.0
    return float(np.corrcoef(predictions.astype(float), labels.astype(float))[0, 1])


@pytest.mark.slow
def test_each_difference_has_the_paired_bootstrap_interval_of_the_stored_predictions(bench):
    """Written out: 2,000 resamples (numpy's default_rng(0), one rng.integers(0, n, n) each), every seed's
    strategy and reference scored on the same resample, the difference averaged over seeds, percentiles 2.5, 97.5."""
    out, result = bench
    data = json.loads((out / "bench.json").read_text())
    uniform = {row["strategy"]: row for row in data["table"]["rows"]}["uniform"]["metrics"]
    runs = {(s, seed): stored(out / s / f"seed-{seed}") for s in STRATEGIES for seed in SEEDS}
    labels = runs["single", 0][1]
    assert all(np.array_equal(labels, y) for _, y in runs.values()) and len(labels) == 32
    rng = np.random.default_rng(0)
    diffs = []
    for _ in range(2000):
        index = rng.integers(0, len(labels), len(labels))
        diffs.append(np.mean([pearson(runs["uniform", s][0][index], labels[index])
                              - pearson(runs["single", s][0][index], labels[index]) for s in SEEDS]))
    low, high = np.percentile(diffs, [2.5, 97.5])
    interval = uniform["pearson"]["interval"]
    assert interval["resamples"] == 2000 and interval["paired_seeds"] == SEEDS and interval["examples"] == 32
    assert (interval["low"], interval["high"]) == pytest.approx((low, high), abs=1e-9)
    assert interval["delta"] == pytest.approx(uniform["pearson"]["delta"], abs=1e-6)  # eval.json's values
    assert interval["excludes_zero"] == (low > 0 or high < 0)
    assert uniform["spearman"]["interval"]["resamples"] == 2000  # every metric of the table has its interval

    header = "| strategy | seeds | pearson | Δ pearson [95% CI] | spearman | Δ spearman [95% CI] |"
    markdown = (out / "bench.md").read_text()
    assert header in markdown
    for metric in ("pearson", "spearman"):
        entry = uniform[metric]
        cell = (f"{entry['delta']:+.4f} [{entry['interval']['low']:+.4f}, {entry['interval']['high']:+.4f}]"
                + (" *" if entry["interval"]["excludes_zero"] else ""))
        assert f" {cell} |" in markdown and cell in result.stdout


def replace_predictions(run_folder, like):
    """Give a run the dev predictions and the eval.json of another run (``like``: a run folder) or exactly right
    predictions (``like`` None), as if it had predicted them itself."""
    import torch

    from mtl.runs.folder import RunFolder

    folder = RunFolder(run_folder)
    summary, evaluation = folder.summary(), folder.eval()
    _, labels = stored(run_folder)
    if like is None:
        predictions, metrics = labels, {"pearson": 1.0, "spearman": 1.0}
    else:
        predictions, metrics = stored(like)[0], RunFolder(like).eval()["demo-similarity"]["dev"]
    folder.write_predictions({"demo-similarity.dev": (torch.tensor(predictions), torch.tensor(labels))},
                             epoch=summary["best_epoch"], step=summary["best_step"])
    evaluation["demo-similarity"]["dev"] = metrics
    (run_folder / "eval.json").write_text(json.dumps(evaluation))


def report_rows(folder):
    result = invoke("report", folder)
    assert result.exit_code == 0, result.output
    data = json.loads((folder / "bench.json").read_text())
    return {row["strategy"]: row for row in data["table"]["rows"]}, (folder / "bench.md").read_text()


@pytest.mark.slow
def test_a_difference_whose_interval_excludes_zero_is_marked_and_no_difference_is_not(bench, tmp_path):
    out, _ = bench
    perfect, same = tmp_path / "perfect", tmp_path / "same"
    for copy in (perfect, same):
        shutil.copytree(out, copy)
    for seed in SEEDS:
        replace_predictions(perfect / "uniform" / f"seed-{seed}", None)  # exactly right: pearson 1 on every resample
        replace_predictions(same / "uniform" / f"seed-{seed}", out / "single" / f"seed-{seed}")  # = the reference

    rows, markdown = report_rows(perfect)
    entry = rows["uniform"]["metrics"]["pearson"]
    single = rows["single"]["metrics"]["pearson"]["values"]
    assert entry["delta"] == pytest.approx(1 - statistics.mean(single))
    assert entry["interval"]["excludes_zero"] and entry["interval"]["low"] > 0
    assert f"{entry['delta']:+.4f} [{entry['interval']['low']:+.4f}, {entry['interval']['high']:+.4f}] *" in markdown

    rows, markdown = report_rows(same)
    entry = rows["uniform"]["metrics"]["pearson"]
    interval = entry["interval"]
    assert (interval["low"], interval["high"]) == (0.0, 0.0) and not interval["excludes_zero"]
    assert "| +0.0000 [+0.0000, +0.0000] |" in markdown


@pytest.mark.slow
def test_runs_without_predictions_still_tabulate_with_no_interval(bench, tmp_path):
    """Runs of an older mtl have no predictions.safetensors: the interval is n/a, the rest of the table as before."""
    out, _ = bench
    copy = tmp_path / "old"
    shutil.copytree(out, copy)
    (copy / "uniform" / "seed-1" / "predictions.safetensors").unlink()
    (copy / "bench.png").unlink()
    rows, markdown = report_rows(copy)
    before = {row["strategy"]: row for row in json.loads((out / "bench.json").read_text())["table"]["rows"]}
    for metric in ("pearson", "spearman"):
        entry = rows["uniform"]["metrics"][metric]
        assert entry["interval"] is None and "uniform seed 1 has no predictions.safetensors" in entry["interval_note"]
        for key in ("values", "mean", "std", "delta", "p"):
            assert entry[key] == before["uniform"]["metrics"][metric][key]
        assert f"| {entry['delta']:+.4f} [n/a] |" in markdown
    assert (copy / "bench.png").read_bytes()[:8] == PNG_MAGIC
    for path in copy.glob("*/seed-*/predictions.safetensors"):  # no run has them: still a table
        path.unlink()
    rows, markdown = report_rows(copy)
    assert rows["uniform"]["metrics"]["pearson"]["interval"] is None and markdown.count("[n/a]") == 2


@pytest.mark.slow
def test_the_figure_draws_each_difference_with_its_interval_and_seeds(bench, monkeypatch, tmp_path):
    """bench.png: one panel per metric (primary first), 0 as the reference, the interval as a bar, seeds as dots."""
    from mtl.study import figures
    from mtl.study.bench.figure import bench_figure

    out, _ = bench
    table = json.loads((out / "bench.json").read_text())["table"]
    drawn = {}
    monkeypatch.setattr(figures, "_save", lambda fig, path: drawn.setdefault("fig", fig))
    bench_figure(table, tmp_path / "bench.png", seeds=2)
    from matplotlib.collections import PathCollection

    axes = [ax for ax in drawn["fig"].axes if ax.get_visible()]
    titles = [ax.get_title(loc="left") for ax in axes]
    assert len(axes) == 2 and "(dev pearson)" in titles[0] and "(dev spearman)" in titles[1]
    uniform = {row["strategy"]: row for row in table["rows"]}["uniform"]["metrics"]
    for ax, metric in zip(axes, ("pearson", "spearman"), strict=True):
        entry = uniform[metric]
        assert [t.get_text() for t in ax.get_xticklabels()] == ["uniform"]  # the reference is the 0 line
        assert any(list(line.get_ydata()) == [0.0, 0.0] for line in ax.get_lines())
        bar = ax.collections[0].get_segments()[0]  # the vertical line of the interval
        assert sorted(bar[:, 1]) == pytest.approx([entry["interval"]["low"], entry["interval"]["high"]])
        (dots,) = [c for c in ax.collections if isinstance(c, PathCollection)]
        assert sorted(dots.get_offsets()[:, 1]) == pytest.approx(sorted(entry["deltas"]))


@pytest.mark.slow
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


@pytest.mark.slow
def test_report_without_bench_json_is_a_one_line_error(bench, tmp_path):
    out, _ = bench
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "bench.json").unlink()
    assert_one_line_error(invoke("report", copy), f"{copy}: not a bench folder (no bench.json)")


def test_report_of_a_folder_that_is_no_bench(tmp_path):
    assert_one_line_error(invoke("report", tmp_path), "not a bench folder")
    assert_one_line_error(invoke("report", tmp_path / "nope"), "no such folder")


@pytest.mark.parametrize("damage, fragment", [
    (lambda d: d.update(strategies="oops"), "'strategies' must be a non-empty list"),
    (lambda d: d.pop("seeds"), "'seeds' must be a list of integers"),
    (lambda d: d["strategies"][0].update(weighting=3), "bad key 'weighting'"),
    (lambda d: d.update(run_options=[]), "'run_options' must be an object"),
    (lambda d: d["run_options"].pop("target"), "'run_options' must name the bench's target"),
    (lambda d: d["run_options"].update(aux=5), "'run_options' 'aux' must be a list of task names"),
])
@pytest.mark.slow
def test_a_damaged_bench_file_is_a_one_line_error(bench, tmp_path, damage, fragment):
    out, _ = bench
    copy = tmp_path / "b"
    shutil.copytree(out, copy)
    data = json.loads((copy / "bench.json").read_text())
    damage(data)
    (copy / "bench.json").write_text(json.dumps(data))
    before = (copy / "bench.json").read_text()
    assert_one_line_error(invoke("report", copy), f"{copy / 'bench.json'}: a damaged bench file", fragment)
    result = invoke("bench", "--strategy", ",".join(STRATEGIES), "--seeds", "0,1", *TASKS, *TINY, "-o", copy)
    assert_one_line_error(result, "a damaged bench file", fragment)
    assert (copy / "bench.json").read_text() == before


@pytest.mark.slow
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


@pytest.mark.slow
def test_other_run_options_in_an_existing_bench_are_refused(bench):
    out, _ = bench
    before = (out / "bench.json").read_text()
    result = invoke("bench", "--strategy", ",".join(STRATEGIES), "--seeds", "0,1", *TASKS, *TINY, "--lr", "1e-4",
                    "-o", out)
    assert_one_line_error(result, "other run options", "lr")
    assert (out / "bench.json").read_text() == before


@pytest.mark.slow
def test_a_bench_continues_with_another_keep(bench, tmp_path):
    """--keep changes what a run leaves on disk, not its results: a bench continues with another one, and the runs
    it starts from then on keep what the new one says."""
    out, _ = bench
    copy = tmp_path / "b"
    shutil.copytree(out, copy)
    shutil.rmtree(copy / "uniform" / "seed-1")  # not started yet
    result = invoke("bench", "--strategy", ",".join(STRATEGIES), "--seeds", "0,1", *TASKS, *TINY, "--keep", "none",
                    "-o", copy)
    assert result.exit_code == 0, result.output
    assert result.stderr.count("finished before, kept") == 3 and result.stderr.count(": running") == 1
    assert (copy / "uniform" / "seed-0" / "model").is_dir()  # kept as it was
    assert not (copy / "uniform" / "seed-1" / "model").exists()  # --keep none: no weights
    assert (copy / "uniform" / "seed-1" / "eval.json").exists()
    assert json.loads((copy / "bench.json").read_text())["run_options"]["keep"] == "none"


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
    (["--strategy", "uniform", "--grad-accum", "0"], ["--grad-accum must be >= 1 (got 0)"]),
    (["--strategy", "uniform", "--checkpoint-every", "0"], ["--checkpoint-every must be >= 1"]),
    (["--strategy", "uniform", "--data-dir", "/nonexistent/glue"], ["/nonexistent/glue"]),
    (["--strategy", "uniform", "--limit", "demo-similarity=x"], ["--limit 'demo-similarity=x'"]),
    # checked before the bench folder exists (before: each failed inside its first run, the folder left behind)
    (["--strategy", "uniform", "--regularizer", "nope"], ["unknown regularizer 'nope'"]),
    (["--strategy", "uniform", "--regularizer", "smart", "--set", "smart.nope=1"],
     ["regularizer 'smart': unknown option 'nope'"]),
    (["--strategy", "uniform", "--set", "tiny.hiden=1"], ["backbone 'tiny': unknown option 'hiden'"]),
    (["--strategy", "uniform", "--backbone", "tiny:foo"], ["backbone 'tiny' takes no argument"]),
    (["--strategy", "uniform", "--report-to", "nope"], ["--report-to: unknown tracker 'nope'"]),
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_stage_without_its_strategy_runs_the_multi_task_run_first(tmp_path):
    """With --keep none: no run keeps weights but the multi-task run the stage starts from, which keeps its best
    model (--keep model)."""
    out = tmp_path / "b"
    result = invoke("bench", "--strategy", "single,siwlm>finetune", "--seeds", "0", *TASKS, *TINY, "--keep", "none",
                    "-o", out)
    assert result.exit_code == 0, result.output
    for run, keep in (("single", "none"), ("siwlm", "model"), ("siwlm_finetune", "none")):
        folder = out / run / "seed-0"
        assert json.loads((folder / "config.json").read_text())["keep"] == keep
        assert (folder / "model").is_dir() == (folder / "checkpoint").is_dir() == (keep == "model"), run
        assert (folder / "summary.json").is_file() and (folder / "predictions.safetensors").is_file()
    assert json.loads((out / "bench.json").read_text())["run_options"]["keep"] == "none"
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


@pytest.mark.slow
def test_pairs_trains_every_task_alone_and_every_pair(pairs_bench):
    out, result = pairs_bench
    similarity, sentiment = PAIR
    folders = {(similarity,): out / similarity / "single" / "seed-0",
               (sentiment,): out / sentiment / "single" / "seed-0",
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_report_of_a_pairs_bench_reproduces_it(pairs_bench, tmp_path):
    out, result = pairs_bench
    copy = tmp_path / "p"
    shutil.copytree(out, copy)
    (copy / "bench.md").unlink()
    report = invoke("report", copy)
    assert report.exit_code == 0, report.output
    assert report.stdout == result.stdout
    assert (copy / "bench.md").read_text() == (out / "bench.md").read_text().replace(str(out), str(copy))


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_pairs_bench_and_a_plain_one_do_not_mix(pairs_bench, tmp_path):
    out, _ = pairs_bench
    before = (out / "bench.json").read_text()
    assert_one_line_error(invoke("bench", "--strategy", "uniform", "--seeds", "0", *TASKS, *TINY, "-o", out),
                          "holds a --pairs bench")
    assert_one_line_error(invoke("bench", "--pairs", "--seeds", "0", *TASKS, *TINY, "--lr", "1e-4", "-o", out),
                          "other run options", "lr")
    # the same tasks in another order are other pairs (their first task the target): before, trained beside them
    swapped = ["--target", "demo-sentiment", "--aux", "demo-similarity"]
    assert_one_line_error(invoke("bench", "--pairs", "--seeds", "0", *swapped, *TINY, "-o", out),
                          "holds the --pairs bench of demo-similarity, demo-sentiment (in that order")
    assert_one_line_error(invoke("bench", "--pairs", "--seeds", "0", "--target", "demo-similarity", "--aux",
                                 "demo-sentiment,demo-paraphrase", *TINY, "-o", out), "holds the --pairs bench of")
    assert not (out / "demo-sentiment+demo-similarity").exists()
    assert (out / "bench.json").read_text() == before
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "bench.json").write_text(json.dumps({
        "format": "mtl-bench/1", "target": "demo-similarity", "seeds": [0],
        "run_options": {"target": "demo-similarity"},
        "strategies": [{"label": "uniform", "weighting": "uniform", "sampler": "proportional", "single": False,
                        "stage": "", "stage_regularizer": None}]}))
    assert_one_line_error(invoke("bench", "--pairs", *TASKS, *TINY, "-o", plain), "holds a bench without --pairs")


@pytest.mark.parametrize("args, fragments", [
    (["--target", "demo-similarity"], ["--pairs needs at least two tasks"]),
    ([*TASKS, "--strategy", "uniform>finetune"], ["fine-tuning stage"]),
    ([*TASKS, "--strategy", "single"], ["give the pairs' multi-task strategy"]),
    ([*TASKS, "--strategy", "unifrm"], ["unknown strategy 'unifrm'"]),
    ([*TASKS, "--limit", "rte=5"], ["--limit rte=5: task 'rte' is not in this run"]),
    (["--target", "demo-similarity", "--aux", "demo-sentiment,demo-sentiment"],
     ["--aux demo-sentiment,demo-sentiment: task 'demo-sentiment' is given twice"]),
])
def test_bad_pairs_benches_are_one_line_and_write_nothing(tmp_path, args, fragments):
    out = tmp_path / "p"
    assert_one_line_error(invoke("bench", "--pairs", *TINY, *args, "-o", out), *fragments)
    assert not out.exists()
