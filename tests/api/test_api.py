"""The declared Python API (README "Python API"): mtl.train, mtl.bench and mtl.load against what the command line
writes for the same options."""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys

import pytest
from conftest import ROOT, assert_one_line_error, run_mtl
from typer.testing import CliRunner

import mtl
from mtl.api.load import examples
from mtl.cli import app
from mtl.contract import loader

README = (ROOT / "README.md").read_text(encoding="utf-8")
TINY = dict(backbone="tiny", max_steps=4, batch_size=8, max_length=32, eval_limit=40, seed=3)
CLI_TINY = ["--backbone", "tiny", "--max-steps", "4", "--batch-size", "8", "--max-length", "32", "--eval-limit", "40",
            "--seed", "3", "--quiet"]
PAIRS = [("The lawyer followed the man at the station.", "The attorney trailed the man at the train station."),
         ("A cat slept on the warm red sofa all afternoon.", "The dog barked.")]


def test_import_mtl_declares_the_api_without_importing_torch():
    code = ("import sys, mtl; print(sorted({'train', 'bench', 'load', 'task'} & set(mtl.__all__))); "
            "print([m for m in ('torch', 'mtl.api', 'mtl.training') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[:2] == ["['bench', 'load', 'task', 'train']", "[]"]
    assert callable(mtl.train) and callable(mtl.bench) and callable(mtl.load) and callable(mtl.task)


@pytest.mark.parametrize("options, args", [
    (dict(epochs=0), ["--epochs", "0"]),
    (dict(limit=0), ["--limit", "0"]),
    (dict(target="demo-paraphrase", aux="demo-paraphrase"),
     ["--target", "demo-paraphrase", "--aux", "demo-paraphrase"]),
    (dict(weighting="nope"), ["--weighting", "nope"]),
])
def test_a_wrong_option_is_the_one_line_error_of_the_command_line(options, args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = assert_one_line_error(CliRunner().invoke(app, ["run", "--backbone", "tiny", *args]))
    with pytest.raises(mtl.MtlError) as caught:
        mtl.train(backbone="tiny", **options)
    assert f"Error: {caught.value}" == line
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize("options, fragments", [
    (dict(epochs2=3), ["unknown option 'epochs2'. Did you mean 'epochs'"]),
    (dict(epochs="three"), ["--epochs", "'three'"]),
    (dict(options={"mamt": 0.5}), ["expected a mapping", "0.5"]),
    (dict(set={"mamt": 0.5}), ["set must map plugin names to mappings of options"]),
    (dict(set=["mamt.psi"]), ["set 'mamt.psi': expected NAME.KEY=VALUE"]),
])
def test_a_wrong_keyword_is_a_one_line_option_error(options, fragments, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(mtl.OptionError) as caught:
        mtl.train(backbone="tiny", **options)
    assert all(fragment in str(caught.value) for fragment in fragments) and "\n" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_bench_refuses_its_own_wrong_arguments_before_writing(tmp_path):
    out = tmp_path / "bench"
    for kwargs, message in [(dict(seed=1), "unknown option 'seed'"), (dict(jobs=0), "jobs=0"),
                            (dict(seeds=["a"]), "seeds must be integers"),
                            (dict(seeds="0,-1"), "seeds must be >= 0"),
                            (dict(epochs=0), "--epochs must be >= 1")]:
        with pytest.raises(mtl.OptionError, match=message.replace("(", r"\(")):
            mtl.bench(["single", "uniform"], output=out, backbone="tiny", **kwargs)
    with pytest.raises(mtl.UnknownNameError, match="unknown strategy 'nope'"):
        mtl.bench(["single", "nope"], output=out, backbone="tiny")
    assert not out.exists()


def test_load_of_something_else_is_a_one_line_error(tmp_path):
    with pytest.raises(mtl.MtlError, match="does not exist"):
        mtl.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(mtl.MtlError, match="is neither a run folder"):
        mtl.load(tmp_path / "empty")
    with pytest.raises(mtl.MtlError, match="got int"):
        mtl.load(3)


def test_predict_reads_one_example_or_a_list_in_the_tasks_columns():
    pair = ("sentence1", "sentence2")
    assert examples("a b", ("sentence",), "t") == [("a b",)]
    assert examples(["a", "b"], ("sentence",), "t") == [("a",), ("b",)]
    assert examples(("a", "b"), pair, "t") == [("a", "b")]
    assert examples([["a", "b"], {"sentence2": "d", "sentence1": "c"}], pair, "t") == [("a", "b"), ("c", "d")]
    with pytest.raises(mtl.MtlError, match=r"example 2 must be a tuple of 2 texts \(sentence1, sentence2\)"):
        examples([("a", "b"), "c"], pair, "t")
    with pytest.raises(mtl.MtlError, match="example 1 lacks 'sentence2'"):
        examples({"sentence1": "a"}, pair, "t")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The demo suite trained by `mtl run` and by mtl.train with the same options and seed."""
    root = tmp_path_factory.mktemp("api")
    cli = run_mtl("run", *CLI_TINY, "-o", str(root / "cli"))
    assert cli.returncode == 0, cli.stderr
    result = mtl.train(**TINY, output=root / "api")
    return root, result


@pytest.mark.slow
def test_train_gives_the_metrics_of_the_command_line(trained):
    root, result = trained
    cli_eval = json.loads((root / "cli" / "eval.json").read_text())
    assert json.loads((root / "api" / "eval.json").read_text()) == cli_eval
    assert result.metrics == cli_eval and result.output == root / "api" and result.target == "demo-paraphrase"
    primary = loader.create("task", "demo-paraphrase").metrics[0]  # the task's first metric is its primary one
    assert result.primary == cli_eval["demo-paraphrase"]["dev"][primary] and 0 <= result.primary <= 1
    assert result.summary == json.loads((root / "api" / "summary.json").read_text())
    assert result.config.max_steps == 4 and result.config.aux == ["demo-similarity", "demo-sentiment"]


@pytest.mark.slow
def test_load_of_a_run_and_of_its_export_predict_the_same(trained):
    root, result = trained
    run, export = mtl.load(root / "api"), mtl.load(root / "api" / "model")  # model/: what `mtl export` writes
    assert (run.kind, export.kind) == ("run", "export") and run.task == export.task == "demo-paraphrase"
    assert run.metrics == result.metrics and export.metrics == {"demo-paraphrase": result.metrics["demo-paraphrase"]}
    assert run.config.seed == 3 and export.manifest["task"] == "demo-paraphrase"
    texts = PAIRS + [{"sentence1": "He sold the old car.", "sentence2": "She bought a new house."}]
    by_run, by_export, by_result = run.predict(texts), export.predict(texts), result.predict(texts)
    assert [p["label"] for p in by_run] == [p["label"] for p in by_export] == [p["label"] for p in by_result]
    assert all(p["label"] in run.labels for p in by_run)
    assert [p["score"] for p in by_run] == pytest.approx([p["score"] for p in by_export], abs=1e-4)
    # evaluated again from the files, each gives the metrics the trainer chose its best evaluation on
    assert run.evaluate()["metrics"] == pytest.approx(result.metrics["demo-paraphrase"]["dev"])
    assert export.evaluate("dev")["metrics"] == pytest.approx(result.metrics["demo-paraphrase"]["dev"])


def readme_example(name: str) -> str:
    """The README "Python API" block that calls ``mtl.NAME(``."""
    section = README.split("## Python API", 1)[1].split("\n## ", 1)[0]
    return next(block for block in re.findall(r"```python\n(.*?)```", section, re.S) if f"mtl.{name}(" in block)


@pytest.mark.slow
def test_the_readme_train_and_load_examples_run_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(readme_example("train"), "README.md", "exec"), namespace)
    result = namespace["result"]
    stored = json.loads((tmp_path / "runs" / "tiny-demo" / "eval.json").read_text())
    assert result.metrics == stored and result.primary == stored["demo-paraphrase"]["dev"]["f1"]
    assert result.config.max_steps == 8 and result.config.backbone == "tiny"
    exec(compile(readme_example("load"), "README.md", "exec"), namespace)
    model = namespace["model"]
    assert model.kind == "run" and model.metrics == stored
    assert model.evaluate("dev")["metrics"] == pytest.approx(stored["demo-paraphrase"]["dev"])


@pytest.mark.slow
def test_bench_rows_are_the_table_of_bench_json(tmp_path, monkeypatch):
    """The README's example (two strategies, two seeds, tiny backbone) against what it wrote to bench.json."""
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"mtl": mtl}  # the README's blocks are one session: its first one imports mtl
    exec(compile(readme_example("bench"), "README.md", "exec"), namespace)
    result, out = namespace["comparison"], tmp_path / "bench" / "tiny-demo"
    assert result.output == out
    table = json.loads((out / "bench.json").read_text())["table"]
    assert [row.strategy for row in result.rows] == [row["strategy"] for row in table["rows"]] == ["single", "mamt"]
    metric = table["primary"]
    assert result.metric == metric == "f1" and result.reference == "single"
    for row, stored in zip(result.rows, table["rows"], strict=False):
        entry = stored["metrics"][metric]
        assert (row.n, row.mean, row.std, row.delta, row.p) == (2, entry["mean"], entry["std"], entry.get("delta"),
                                                               entry.get("p"))
        # independently of bench.json: mean and sample std over the seeds' eval.json
        values = [json.loads((out / row.strategy / f"seed-{s}" / "eval.json").read_text())["demo-paraphrase"]["dev"]
                  [metric] for s in (0, 1)]
        assert row.mean == pytest.approx(statistics.mean(values)) and row.std == pytest.approx(statistics.stdev(values))
    mamt = result.row("mamt")
    interval = table["rows"][1]["metrics"][metric]["interval"]
    assert (mamt.low, mamt.high, mamt.excludes_zero) == (interval["low"], interval["high"], interval["excludes_zero"])
    assert mamt.low <= mamt.delta <= mamt.high
    pandas = pytest.importorskip("pandas")
    frame = result.to_pandas()
    assert list(frame.index) == ["single", "mamt"] and frame.loc["mamt", "mean"] == mamt.mean
    assert pandas.isna(frame.loc["single", "delta"])  # the reference has no difference to itself
