"""The built-in tasks of the pooled types (SWAG, COPA, BoolQ, CB, WiC, QNLI as ranking): read from files the tests
write in the layouts their sources ship (SWAG's CSV, SuperGLUE's JSONL, GLUE's TSV) and from an in-memory
``datasets.Dataset`` standing in for the Hub (the hub's column names and integer labels)."""

from __future__ import annotations

import json

import pytest

import mtl
from mtl.data import hub


def task(name: str):
    made = mtl.create("task", name)
    made.name = name
    return made


@pytest.fixture
def fake_hub(monkeypatch):
    """`datasets.load_dataset(path, config, split=...)` answered from ``tables[(path, config, split)]``."""
    import datasets

    tables: dict = {}
    calls: list = []

    def load_dataset(path, config=None, split=None):
        calls.append((path, config, split))
        return datasets.Dataset.from_list(tables[(path, config, split)])

    monkeypatch.setattr(hub, "offline", lambda: None)
    monkeypatch.setattr(hub, "probe", lambda timeout=3.0: None)
    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return tables, calls


SWAG_HUB_ROW = {"video-id": "anetv_1", "fold-ind": "5", "startphrase": "Students lower their eyes. Someone",
                "sent1": "Students lower their eyes.", "sent2": "Someone", "gold-source": "gold",
                "ending0": "walks away.", "ending1": "smiles.", "ending2": "sings.", "ending3": "flies.", "label": 1}


def test_swag_from_the_hub_and_from_its_csv(fake_hub, tmp_path):
    tables, calls = fake_hub
    tables[("allenai/swag", "regular", "validation")] = [SWAG_HUB_ROW]
    examples = task("swag").load("dev")
    assert calls == [("allenai/swag", "regular", "validation")]
    assert examples.rows["context"] == ["Students lower their eyes."] and examples.rows["prefix"] == ["Someone"]
    assert examples.rows["choices"] == [["walks away.", "smiles.", "sings.", "flies."]] and examples.labels == [1]
    header = list(SWAG_HUB_ROW)
    csv = tmp_path / "val.csv"
    csv.write_text(",".join(header) + "\n" + ",".join(str(SWAG_HUB_ROW[h]) for h in header) + "\n"
                   + ",".join(str(SWAG_HUB_ROW[h]) if h != "ending3" else "" for h in header) + "\n")
    from_csv = task("swag").load("dev", file=str(csv))
    assert from_csv.rows["choices"][0] == examples.rows["choices"][0] and from_csv.labels == [1, 1]


def test_copa_turns_the_question_into_a_prefix(fake_hub, tmp_path):
    tables, _ = fake_hub
    tables[("aps/super_glue", "copa", "train")] = [
        {"premise": "The man broke his toe.", "choice1": "He dropped a hammer on his foot.",
         "choice2": "He got a hole in his sock.", "question": "cause", "idx": 0, "label": 0},
        {"premise": "I tipped the bottle.", "choice1": "The liquid in the bottle froze.",
         "choice2": "The liquid in the bottle poured out.", "question": "effect", "idx": 1, "label": 1}]
    examples = task("copa").load("train")
    assert examples.rows["prefix"] == ["What was the cause?", "What happened as a result?"]
    assert examples.labels == [0, 1] and len(examples.rows["choices"][1]) == 2
    jsonl = tmp_path / "val.jsonl"  # SuperGLUE's own COPA/val.jsonl
    jsonl.write_text(json.dumps({"premise": "My body cast a shadow.", "choice1": "The sun was rising.",
                                 "choice2": "The grass was cut.", "question": "cause", "idx": 0, "label": 0}) + "\n")
    assert task("copa").load("dev", file=str(jsonl)).rows["prefix"] == ["What was the cause?"]


def test_boolq_cb_and_wic_from_superglue_jsonl(tmp_path):
    boolq = tmp_path / "boolq.jsonl"
    boolq.write_text(json.dumps({"question": "is the sky blue", "passage": "The sky is blue.", "idx": 0,
                                 "label": True}) + "\n" + json.dumps({"question": "is snow hot", "passage": "No.",
                                                                      "idx": 1, "label": False}) + "\n")
    examples = task("boolq").load("dev", file=str(boolq))
    assert examples.labels == [1, 0] and examples.texts[0] == ("is the sky blue", "The sky is blue.")
    cb = tmp_path / "cb.jsonl"
    cb.write_text("".join(json.dumps({"premise": "p", "hypothesis": h, "label": y, "idx": i}) + "\n"
                          for i, (h, y) in enumerate([("a", "neutral"), ("b", "contradiction")])))
    assert task("cb").load("dev", file=str(cb)).labels == [2, 1]
    assert task("cb").metrics == ("accuracy", "f1_macro")
    wic = tmp_path / "wic.jsonl"
    wic.write_text(json.dumps({"word": "place", "sentence1": "Do you want to come over to my place later?",
                               "sentence2": "A political system with no place for the less prominent groups.",
                               "idx": 0, "label": False, "start1": 31, "start2": 27, "end1": 36, "end2": 32}) + "\n")
    examples = task("wic").load("dev", file=str(wic))
    assert examples.texts == [("place: Do you want to come over to my place later?",
                               "A political system with no place for the less prominent groups.")]
    assert examples.labels == [0]


def test_superglue_classification_from_the_hub(fake_hub):
    tables, calls = fake_hub
    tables[("aps/super_glue", "wic", "validation")] = [
        {"word": "bank", "sentence1": "s1", "sentence2": "s2", "start1": 0, "start2": 0, "end1": 1, "end2": 1,
         "idx": 0, "label": 1}]
    tables[("aps/super_glue", "cb", "train")] = [{"premise": "p", "hypothesis": "h", "idx": 0, "label": 2}]
    assert task("wic").load("dev").texts == [("bank: s1", "s2")]
    assert task("cb").load("train").labels == [2]


def test_qnli_ranking_reads_glues_qnli_folder_and_groups_by_question(tmp_path):
    folder = tmp_path / "glue" / "QNLI"
    folder.mkdir(parents=True)
    rows = [("q1", "a", "not_entailment"), ("q1", "b", "entailment"), ("q2", "c", "entailment")]
    (folder / "dev.tsv").write_text("index\tquestion\tsentence\tlabel\n"
                                    + "".join(f"{i}\t{q}\t{s}\t{y}\n" for i, (q, s, y) in enumerate(rows)))
    t = task("qnli-ranking")
    examples = t.load("dev", data_dir=str(tmp_path / "glue"))
    from mtl.data.batching import encode

    data = encode(examples, mtl.create("backbone", "tiny").tokenizer, 32, t)
    assert data.table["labels"] == [[0, 1], [1]]  # entailment is the positive candidate


def test_qnli_ranking_from_the_hub(fake_hub):
    tables, calls = fake_hub
    tables[("nyu-mll/glue", "qnli", "validation")] = [
        {"question": "q", "sentence": "s1", "label": 1, "idx": 0}, {"question": "q", "sentence": "s2", "label": 0,
                                                                     "idx": 1}]
    examples = task("qnli-ranking").load("dev")
    assert calls == [("nyu-mll/glue", "qnli", "validation")] and examples.labels == [1, 0]
