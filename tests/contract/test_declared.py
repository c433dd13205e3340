"""Tasks declared as data (no package): declarations checked, labels inferred in a stable recorded order, files of
every format read alike, and the declared tasks registered by name (no training here: tests/runs/test_declared_runs.py
trains them)."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mtl
from mtl.contract import declare, declared
from mtl.errors import DataError, MtlError

ROWS = [("a fine film", "pos"), ("a dull film", "neg"), ("an odd film", "meh"), ("a great film", "pos"),
        ("a bad film", "neg")]


@pytest.fixture(autouse=True)
def forget_declared():
    yield
    declared.clear()


def write_tsv(path, rows=ROWS, header=("text", "label")):
    path.write_text("\t".join(header) + "\n" + "".join(f"{t}\t{y}\n" for t, y in rows), encoding="utf-8")
    return path


def write_parquet(path, rows=ROWS):
    pq.write_table(pa.table({"text": [t for t, _ in rows], "label": [y for _, y in rows]}), path)
    return path


def tasks_file(tmp_path, **decl):
    entry = {"name": "films", "type": "classification", "text_columns": ["text"], "label_column": "label",
             "files": {"train": "train.tsv", "dev": "train.tsv"}, **decl}
    path = tmp_path / "tasks.yaml"
    path.write_text(json.dumps({"tasks": [entry]}), encoding="utf-8")  # JSON is YAML
    return path


def test_labels_are_inferred_sorted_and_the_declaration_recorded_in_full(tmp_path):
    write_tsv(tmp_path / "train.tsv")
    (decl,) = declared.read_tasks_file(tasks_file(tmp_path))
    assert decl["labels"] == ["meh", "neg", "pos"]  # sorted label strings, not the order of first appearance
    assert decl["metrics"] == ["accuracy"]  # the type's default_metrics
    assert decl["files"] == {"train": str(tmp_path / "train.tsv"), "dev": str(tmp_path / "train.tsv")}
    assert decl["eval_splits"] == ["dev"] and decl["source"] == str(tmp_path / "tasks.yaml")
    declared.register([decl], "test")
    task = mtl.create("task", "films")
    examples = task.load("train")
    assert examples.labels == [2, 1, 0, 2, 1]  # indices into the sorted labels
    assert examples.texts[0] == ("a fine film",)


def test_a_tsv_a_parquet_a_json_and_a_jsonl_file_give_the_same_examples(tmp_path):
    write_tsv(tmp_path / "train.tsv")
    write_parquet(tmp_path / "train.parquet")
    (tmp_path / "train.json").write_text(json.dumps([{"text": t, "label": y} for t, y in ROWS]), encoding="utf-8")
    (tmp_path / "train.jsonl").write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in ROWS),
                                          encoding="utf-8")
    loaded = []
    for suffix in ("tsv", "parquet", "json", "jsonl"):
        task = mtl.task("films", text_columns="text", data={"train": tmp_path / f"train.{suffix}"})
        assert task.labels == ("meh", "neg", "pos")
        examples = task.load("train")
        loaded.append((examples.texts, examples.labels))
    assert all(item == loaded[0] for item in loaded)


def test_a_dataset_with_a_class_label_keeps_its_names_in_their_order(tmp_path):
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["pos", "neg"])})
    data = datasets.Dataset.from_dict({"text": ["good", "bad", "fine"], "label": [0, 1, 0]}, features=features)
    task = mtl.task("films", text_columns=["text"], data=data)
    assert task.labels == ("pos", "neg")  # the ClassLabel's order: its integers index it
    assert task.load("train").labels == [0, 1, 0]
    assert task.eval_splits == ()  # a Dataset alone is the training split


def test_a_dataset_dict_names_validation_dev(tmp_path):
    datasets = pytest.importorskip("datasets")
    split = datasets.Dataset.from_dict({"text": [t for t, _ in ROWS], "label": [y for _, y in ROWS]})
    task = mtl.task("films", text_columns=["text"], data=datasets.DatasetDict({"train": split, "validation": split}))
    assert task.eval_splits == ("dev",) and task.load("dev").labels == task.load("train").labels


def test_the_keys_a_declaration_may_pass_through_are_the_task_attributes():
    keys = declare.task_attributes()
    assert {"text_columns", "label_column", "label_aliases", "train_split"} <= set(keys)
    assert "hub_columns" not in keys and "name" not in keys


@pytest.mark.parametrize("decl, fragments", [
    ({"type": "clasification"}, ["unknown task type 'clasification'", "Did you mean 'classification'"]),
    ({"label_colum": "label"}, ["unknown declaration key 'label_colum'", "Did you mean 'label_column'"]),
    ({"text_columns": ["sentence"]}, ["train.tsv: no column 'sentence'", "task 'films'", "its columns are"]),
    ({"labels": ["pos", "neg"]}, ["train.tsv:4: unknown label 'meh'"]),
    ({"metrics": ["pearson"]}, ["metric 'pearson' is not one of"]),
    ({"files": {"dev": "train.tsv"}}, ["no 'train' split"]),
])
def test_a_bad_declaration_is_one_line_naming_the_tasks_file_and_the_task(tmp_path, decl, fragments):
    write_tsv(tmp_path / "train.tsv")
    with pytest.raises(MtlError) as caught:
        declared.read_tasks_file(tasks_file(tmp_path, **decl))
    message = str(caught.value)
    assert "\n" not in message and "tasks.yaml" in message and "'films'" in message
    for fragment in fragments:
        assert fragment in message


def test_one_inferred_label_is_an_error(tmp_path):
    write_tsv(tmp_path / "train.tsv", [("a", "pos"), ("b", "pos")])
    with pytest.raises(DataError, match=r"train.tsv: the training split has 1 label in column 'label' \(pos\)"):
        declared.read_tasks_file(tasks_file(tmp_path))


def test_a_declared_name_of_a_registered_task_is_refused(tmp_path):
    write_tsv(tmp_path / "train.tsv")
    with pytest.raises(MtlError, match=r"task 'rte' is already registered by plugin 'mtl.plugins.tasks.rte'"):
        mtl.task("rte", text_columns=["text"], data={"train": tmp_path / "train.tsv"})


def test_a_json_tasks_file_may_be_a_list_and_declare_a_regression(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "scores.csv").write_text("a,b,score\nx y,x z,2.5\np q,r s,0\n", encoding="utf-8")
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps([{"name": "sims", "type": "regression", "text_columns": ["a", "b"],
                                 "label_column": "score", "files": {"train": "sub/scores.csv"}}]), encoding="utf-8")
    (decl,) = declared.read_tasks_file(path)
    assert decl["labels"] is None and decl["metrics"] == ["pearson", "spearman"] and decl["eval_splits"] == []
    declared.register([decl], str(path))
    task = mtl.create("task", "sims")
    assert task.kind.name == "regression" and task.load("train").labels == [2.5, 0.0]
    assert task.load("train").texts == [("x y", "x z"), ("p q", "r s")]


def test_a_hub_declaration_maps_its_columns_and_keeps_the_class_label_order(monkeypatch):
    """The Hub is offline here: ``datasets.load_dataset`` gives a local Dataset with the Hub's column names."""
    datasets = pytest.importorskip("datasets")
    from mtl.data import hub

    features = datasets.Features({"sentence": datasets.Value("string"),
                                  "gold": datasets.ClassLabel(names=["yes", "no"])})
    splits = {"train": datasets.Dataset.from_dict({"sentence": ["a", "b", "c"], "gold": [1, 0, 1]}, features=features),
              "validation": datasets.Dataset.from_dict({"sentence": ["d"], "gold": [0]}, features=features)}
    asked = []

    def load_dataset(path, name=None, split=None):
        asked.append((path, name, split))
        return splits[split]

    monkeypatch.setattr(hub, "offline", lambda: None)
    monkeypatch.setattr(hub, "probe", lambda *a, **k: None)
    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    task = mtl.task("answers", hub={"path": "org/answers", "name": "v1", "columns": {"text": "sentence",
                                                                                      "label": "gold"}},
                    text_columns=["text"])
    assert task.labels == ("yes", "no") and task.eval_splits == ("dev",)
    train = task.load("train")
    assert train.texts == [("a",), ("b",), ("c",)] and train.labels == [1, 0, 1]
    assert task.load("dev").labels == [0]
    assert ("org/answers", "v1", "train") in asked and ("org/answers", "v1", "validation") in asked
    with pytest.raises(DataError, match=r"hub:org/answers/v1\[train\]: no column 'body'"):
        mtl.task("answers", hub={"path": "org/answers", "name": "v1", "columns": {"label": "gold"}},
                 text_columns=["body"])
