"""Declared tasks trained (issue 28, "tasks declared as data"): a Python Dataset, local TSV/Parquet files and a tasks
file give the same run; a run resumes, evaluates and predicts in a new process without the tasks file; a declared
task is an auxiliary task and a bench task; every bad declaration is one line through the real command line."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import ROOT, TINY_RUN, run_mtl
from helpers.runs import Crash, crash_at, run_files

import mtl
from mtl.contract import declared

DEMO = ROOT / "core" / "data" / "demo"
NAMES = {"0": "negative", "1": "positive"}
OPTIONS = dict(backbone="tiny", max_steps=6, batch_size=8, max_length=32, lr=1e-3, log_every=1, seed=2)


@pytest.fixture(autouse=True)
def forget_declared():
    yield
    declared.clear()


def demo_rows(split: str) -> list[dict[str, str]]:
    """The demo sentiment split with its labels as words (the first row is positive: sorted order differs)."""
    with open(DEMO / f"sentiment_{split}.tsv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [{"review": r["sentence"], "mood": NAMES[r["label"]]} for r in rows]


def write_data(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "dev"):
        rows = demo_rows(split)
        (folder / f"{split}.tsv").write_text("review\tmood\n" + "".join(f"{r['review']}\t{r['mood']}\n" for r in rows),
                                             encoding="utf-8")
        pq.write_table(pa.table({k: [r[k] for r in rows] for k in ("review", "mood")}), folder / f"{split}.parquet")
    return folder


TASKS_YAML = """\
tasks:
  - name: reviews
    type: classification
    text_columns: [review]
    label_column: mood
    files: {train: data/train.tsv, dev: data/dev.tsv}
"""


@pytest.mark.slow
def test_a_dataset_local_files_and_a_tasks_file_give_the_same_run(tmp_path):
    datasets = pytest.importorskip("datasets")
    write_data(tmp_path / "data")
    (tmp_path / "tasks.yaml").write_text(TASKS_YAML, encoding="utf-8")
    runs = {}
    # 1. a tasks file (TSV files, paths relative to the file)
    result = mtl.train(target="reviews", tasks_file=str(tmp_path / "tasks.yaml"), output=str(tmp_path / "file"),
                       **OPTIONS)
    runs["file"] = result.output
    # 2. a datasets.DatasetDict in memory
    splits = {s: datasets.Dataset.from_list(demo_rows(s)) for s in ("train", "dev")}
    mtl.task("reviews", text_columns=["review"], label_column="mood",
             data=datasets.DatasetDict({"train": splits["train"], "validation": splits["dev"]}))
    runs["dataset"] = mtl.train(target="reviews", output=str(tmp_path / "dataset"), **OPTIONS).output
    # 3. local Parquet files named in Python
    mtl.task("reviews", text_columns="review", label_column="mood",
             data={"train": tmp_path / "data" / "train.parquet", "dev": tmp_path / "data" / "dev.parquet"})
    runs["parquet"] = mtl.train(target="reviews", output=str(tmp_path / "parquet"), **OPTIONS).output

    first = run_files(runs["file"])
    assert json.loads(first[1].splitlines()[0])["loss.reviews"] > 0
    for name in ("dataset", "parquet"):
        assert run_files(runs[name]) == first, name  # eval.json and every step's losses
    records = {n: json.loads((Path(p) / "config.json").read_text())["declared"] for n, p in runs.items()}
    for decl in records.values():
        assert decl[0]["labels"] == ["negative", "positive"]  # inferred and recorded, sorted
        assert decl[0]["text_columns"] == ["review"] and decl[0]["label_column"] == "mood"
    assert records["file"][0]["files"]["train"] == str(tmp_path / "data" / "train.tsv")
    assert records["file"][0]["source"] == str(tmp_path / "tasks.yaml")
    # the Dataset's splits are kept in the run folder, and config.json names them there
    assert records["dataset"][0]["files"] == {s: str(Path(runs["dataset"]) / "data" / "reviews" / f"{s}.parquet")
                                              for s in ("train", "dev")}
    assert pq.read_table(records["dataset"][0]["files"]["dev"]).column("mood").to_pylist() == [
        r["mood"] for r in demo_rows("dev")]


@pytest.mark.slow
def test_a_declared_run_resumes_evaluates_and_predicts_in_a_new_process(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    data = datasets.Dataset.from_list(demo_rows("train"))
    options = dict(OPTIONS, max_steps=None, epochs=1, batch_size=16, checkpoint_every=2)  # 6 steps, crash at 5
    mtl.task("reviews", text_columns=["review"], label_column="mood",
             data={"train": data, "dev": datasets.Dataset.from_list(demo_rows("dev"))})
    mtl.train(target="reviews", output=str(tmp_path / "whole"), **options)
    crash_at(monkeypatch, 5)
    with pytest.raises(Crash):
        mtl.train(target="reviews", output=str(tmp_path / "crashed"), **options)
    monkeypatch.undo()
    declared.clear()  # and the new processes below have no declaration but config.json's
    resumed = run_mtl("run", "--resume", str(tmp_path / "crashed"), "-q")
    assert resumed.returncode == 0, resumed.stderr
    assert run_files(tmp_path / "crashed") == run_files(tmp_path / "whole")
    evaluated = run_mtl("eval", str(tmp_path / "crashed"), "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    expected = json.loads((tmp_path / "whole" / "eval.json").read_text())["reviews"]["dev"]
    assert json.loads(evaluated.stdout)["metrics"] == pytest.approx(expected)
    (tmp_path / "input.txt").write_text("A truly wonderful show.\n", encoding="utf-8")
    predicted = run_mtl("predict", str(tmp_path / "crashed"), "-i", str(tmp_path / "input.txt"))
    assert predicted.returncode == 0, predicted.stderr
    assert json.loads(predicted.stdout.splitlines()[0])["label"] in ("negative", "positive")


@pytest.mark.slow
def test_a_declared_task_is_an_auxiliary_task_in_a_bench_and_listed_by_mtl_tasks(tmp_path):
    write_data(tmp_path / "data")
    (tmp_path / "tasks.yaml").write_text(TASKS_YAML, encoding="utf-8")
    listed = run_mtl("tasks", "--tasks-file", str(tmp_path / "tasks.yaml"), "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert rows["reviews"]["declared"] and rows["reviews"]["labels"] == ["negative", "positive"]
    assert not rows["demo-paraphrase"]["declared"]
    bench = run_mtl("bench", "--tasks-file", str(tmp_path / "tasks.yaml"), "-t", "demo-paraphrase", "-a", "reviews",
                    "--strategy", "uniform", "--seeds", "0", "-o", str(tmp_path / "bench"), "--limit", "32",
                    "--eval-limit", "16", *[a for a in TINY_RUN if a != "--quiet"])
    assert bench.returncode == 0, bench.stderr
    run = tmp_path / "bench" / "uniform" / "seed-0"
    record = json.loads((run / "config.json").read_text())
    assert record["aux"] == ["reviews"] and record["declared"][0]["name"] == "reviews"
    assert set(json.loads((run / "eval.json").read_text())) == {"demo-paraphrase", "reviews"}
    (tmp_path / "tasks.yaml").unlink()  # the bench's runs are evaluated from their own records
    evaluated = run_mtl("eval", str(run), "--json")
    assert evaluated.returncode == 0, evaluated.stderr


BAD = [  # (what the tasks file says instead, the error)
    (("type: classification", "type: clasification"),
     "unknown task type 'clasification'. Did you mean 'classification'"),
    (("label_column: mood", "label_colum: mood"), "unknown declaration key 'label_colum'. Did you mean 'label_column'"),
    (("[review]", "[text]"), "/data/train.tsv: no column 'text' (text_columns of task 'reviews' in "),
    (("mood\n", "mood\n    labels: [negative, neutral]\n"),
     "/data/train.tsv:2: unknown label 'positive' for task 'reviews'"),
    (("train: data/train.tsv", "train: data/one.tsv"),
     "/data/one.tsv: the training split has 1 label in column 'mood' (negative)"),
    (("name: reviews", "name: rte"), "task 'rte' is already registered by plugin 'mtl.plugins.tasks.rte'"),
]


@pytest.mark.slow
@pytest.mark.parametrize("change, error", BAD)
def test_a_bad_declaration_is_one_line_before_anything_is_written(tmp_path, change, error):
    write_data(tmp_path / "data")
    (tmp_path / "data" / "one.tsv").write_text("review\tmood\nbad\tnegative\nworse\tnegative\n", encoding="utf-8")
    assert change[0] in TASKS_YAML
    (tmp_path / "tasks.yaml").write_text(TASKS_YAML.replace(change[0], change[1], 1), encoding="utf-8")
    target = "rte" if "rte" in change[1] else "reviews"
    result = run_mtl("run", "--tasks-file", str(tmp_path / "tasks.yaml"), "-t", target, "-o", str(tmp_path / "run"),
                     *TINY_RUN)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert result.returncode != 0 and len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert error in lines[0] and "tasks.yaml" in lines[0], lines[0]
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_the_readme_walkthrough_runs_as_written(tmp_path, monkeypatch):
    """README "Your own task in a few lines": the tasks file, every command and the Python block, as written."""
    import shlex

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Your own task in a few lines"):readme.index("## Training on GLUE")]
    yaml_block, bash_block, python_block = (re.search(rf"```{kind}\n(.*?)```", section, re.S).group(1)
                                            for kind in ("yaml", "bash", "python"))
    write_data(tmp_path / "data")
    (tmp_path / "tasks.yaml").write_text(yaml_block, encoding="utf-8")
    (tmp_path / "reviews.txt").write_text("A truly wonderful show.\nThe food was awful.\n", encoding="utf-8")
    commands = [shlex.split(line, comments=True) for line in bash_block.splitlines() if line.startswith("mtl ")]
    assert [c[1] for c in commands] == ["tasks", "run", "eval", "predict"]
    for command in commands:
        result = run_mtl(*command[1:], cwd=tmp_path)
        assert result.returncode == 0, (command, result.stderr)
        if command[1] == "run":
            (tmp_path / "tasks.yaml").unlink()  # eval and predict below read the run's own record
    assert len(result.stdout.splitlines()) == 2  # one prediction per input line
    assert json.loads((tmp_path / "runs" / "reviews" / "config.json").read_text())["aux"] == [
        "demo-sentiment", "demo-paraphrase"]
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(python_block, "README.md", "exec"), namespace)
    assert set(namespace["result"].metrics) == {"reviews", "demo-sentiment", "demo-paraphrase"}
    assert namespace["result"].metrics["reviews"]["dev"]["accuracy"] >= 0
