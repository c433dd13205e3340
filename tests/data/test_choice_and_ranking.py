"""The pooled task types beyond one class per text: multiple choice, MT-DNN's pairwise ranking and multi-label
classification. Reading (files the tests write, in the Hub's layout), instances, losses, features and metrics,
each restated here from its definition; bad rows are one line naming the file and line."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch

import mtl
from mtl import DataError, Task
from mtl.data.batching import encode


@pytest.fixture(scope="module")
def tokenizer():
    return mtl.create("backbone", "tiny").tokenizer


def task(name: str):
    made = mtl.create("task", name)
    made.name = name
    return made


class Swagish(Task):
    name = "swagish"
    type = "multiple-choice"
    text_columns = ("sent1",)
    choice_prefix_column = "sent2"
    choice_columns = ("ending0", "ending1", "ending2")
    labels = None


def write_jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


SWAG_ROWS = [
    {"sent1": "She opened the door.", "sent2": "She", "ending0": "walked in.", "ending1": "flew.", "ending2": "sang.",
     "label": 0},
    {"sent1": "He was hungry.", "sent2": "He", "ending0": "slept.", "ending1": "ate.", "ending2": "ran.", "label": 1},
]


# ------------------------------------------------------------------------------------------ multiple choice


def test_multiple_choice_rows_become_one_instance_of_k_pairs(tmp_path, tokenizer):
    examples = Swagish().load("train", file=write_jsonl(tmp_path / "t.jsonl", SWAG_ROWS))
    assert examples.rows["choices"][1] == ["slept.", "ate.", "ran."] and examples.labels == [0, 1]
    data = encode(examples, tokenizer, 32, Swagish())
    batch = data.collate([0, 1])
    assert batch["input_ids"].shape[:2] == (2, 3) and batch["labels"].tolist() == [0, 1]
    # the second pair of example 1 is (context, prefix + ending), encoded as the tokenizer encodes that pair alone
    alone = tokenizer("He was hungry.", "He ate.")["input_ids"]
    assert batch["input_ids"][1, 1, : len(alone)].tolist() == alone
    assert batch["attention_mask"][1, 1].sum() == len(alone)


def test_multiple_choice_logits_features_and_loss_by_hand(tmp_path, tokenizer):
    t = Swagish()
    data = encode(t.load("train", file=write_jsonl(tmp_path / "t.jsonl", SWAG_ROWS)), tokenizer, 32, t)
    batch = data.collate([0, 1])
    flat = t.kind.backbone_batch(batch)
    assert flat["input_ids"].shape == (6, batch["input_ids"].shape[-1])
    scores = torch.arange(6.0).view(6, 1)  # one score per (example, ending), in order
    logits = t.kind.logits(t, scores, batch)
    assert logits.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    loss = t.loss(logits, batch["labels"])
    expected = [-math.log(math.exp(0) / sum(math.exp(v) for v in (0, 1, 2))),
                -math.log(math.exp(4) / sum(math.exp(v) for v in (3, 4, 5)))]
    assert loss.tolist() == pytest.approx(expected)
    features = torch.arange(12.0).view(6, 2)
    assert t.kind.features(t, features, batch).tolist() == [[2.0, 3.0], [8.0, 9.0]]  # mean of each example's 3


def test_multiple_choice_from_a_list_column_and_a_csv_file(tmp_path):
    class Listed(Task):
        name, type, text_columns, choices_column, labels = "listed", "multiple-choice", ("q",), "options", None

    rows = [{"q": "2 + 2?", "options": ["3", "4"], "label": 1}]
    assert Listed().load("train", file=write_jsonl(tmp_path / "l.jsonl", rows)).rows["choices"] == [["3", "4"]]
    csv = tmp_path / "swag.csv"
    csv.write_text('sent1,sent2,ending0,ending1,ending2,label\n"A, quoted context.",He,a.,b.,c.,2\n')
    examples = Swagish().load("train", file=str(csv))
    assert examples.rows["context"] == ["A, quoted context."] and examples.labels == [2]


@pytest.mark.parametrize("bad,fragment", [
    ({"ending2": None}, "column 'ending2' must be a string"),
    ({"label": 3}, "label 3 is out of range for task 'swagish' (3 choices: 0-2)"),
    ({"label": "two"}, "label 'two' of task 'swagish' is not the index of a choice"),
    ({"drop": "ending1"}, "missing column 'ending1' of task 'swagish'"),
    ({"drop": "label"}, "missing label column 'label'"),
])
def test_multiple_choice_bad_rows_are_one_line_naming_file_and_line(tmp_path, bad, fragment):
    row = dict(SWAG_ROWS[1])
    row.pop(bad.pop("drop", None), None)
    row.update(bad)
    path = write_jsonl(tmp_path / "bad.jsonl", [SWAG_ROWS[0], row])
    with pytest.raises(DataError) as info:
        Swagish().load("train", file=path)
    message = str(info.value)
    assert message.startswith(f"{path}:2: ") and fragment in message and "\n" not in message


def test_a_choice_count_that_varies_names_the_row(tmp_path):
    class Listed(Task):
        name, type, text_columns, choices_column, labels = "listed", "multiple-choice", ("q",), "options", None

    rows = [{"q": "a", "options": ["x", "y"], "label": 0}, {"q": "b", "options": ["x", "y"], "label": 1},
            {"q": "c", "options": ["x", "y", "z"], "label": 2}]
    path = write_jsonl(tmp_path / "vary.jsonl", rows)
    with pytest.raises(DataError, match=rf"^{path}:3: 3 choices, but the task's examples have 2 as at {path}:1;"):
        Listed().load("train", file=path)
    task_of_three = Listed()
    task_of_three.num_choices = 3  # declared: the first row already differs
    with pytest.raises(DataError, match=rf"^{path}:1: 2 choices, but the task's examples have 3 \(num_choices"):
        task_of_three.load("train", file=path)


def test_multiple_choice_present_names_the_chosen_ending(tmp_path, tokenizer):
    t = Swagish()
    examples = t.load("train", file=write_jsonl(tmp_path / "t.jsonl", SWAG_ROWS))
    data = encode(examples, tokenizer, 32, t)
    shown = t.kind.present(t, examples.columns(t), data, [torch.tensor([0.0, 2.0, 0.0]), torch.tensor([5.0, 0, 0])])
    assert shown[0]["choice"] == 1 and shown[0]["ending"] == "flew."
    assert shown[0]["score"] == pytest.approx(math.exp(2) / (math.exp(2) + 2))
    assert shown[1]["choice"] == 0 and shown[1]["ending"] == "slept." and sum(shown[1]["scores"]) == pytest.approx(1)


def test_demo_choice_is_packaged_and_deterministic():
    t = task("demo-choice")
    train, dev = t.load("train"), t.load("dev")
    assert (len(train), len(dev)) == (300, 100) and t.num_choices == 4
    assert sorted(set(train.labels)) == [0, 1, 2, 3]
    seen = {json.dumps([c, p, x]) for c, p, x in zip(train.rows["context"], train.rows["prefix"], train.rows["choices"],
                                                       strict=True)}
    assert not seen & {json.dumps([c, p, x]) for c, p, x in zip(dev.rows["context"], dev.rows["prefix"],
                                                                dev.rows["choices"], strict=True)}


# ------------------------------------------------------------------------------------------ ranking


class Ranked(Task):
    name = "ranked"
    type = "ranking"
    text_columns = ("question", "sentence")
    labels = ("entailment", "not_entailment")  # GLUE's QNLI labels
    positive_label = "entailment"
    metrics = ("accuracy", "p_at_1")


QNLI_ROWS = [  # (question, sentence, label): q1 has 3 candidates, q2 2, q3 one and no positive
    ("q1?", "s1a", "not_entailment"), ("q2?", "s2a", "entailment"), ("q1?", "s1b", "entailment"),
    ("q3?", "s3a", "not_entailment"), ("q1?", "s1c", "not_entailment"), ("q2?", "s2b", "not_entailment"),
]


def qnli_file(tmp_path, rows=QNLI_ROWS) -> str:
    path = tmp_path / "qnli.tsv"
    path.write_text("index\tquestion\tsentence\tlabel\n" + "".join(f"{i}\t{q}\t{s}\t{y}\n"
                                                                 for i, (q, s, y) in enumerate(rows)))
    return str(path)


def test_ranking_groups_pairs_by_query_in_first_appearance_order(tmp_path, tokenizer):
    t = Ranked()
    data = encode(t.load("dev", file=qnli_file(tmp_path)), tokenizer, 32, t)
    assert data.table["members"] == [[0, 2, 4], [1, 5], [3]]
    assert data.table["labels"] == [[0, 1, 0], [1, 0], [0]]
    batch = data.collate([1, 2, 0])
    assert batch["choice_mask"].tolist() == [[1, 1, 0], [1, 0, 0], [1, 1, 1]]
    assert t.kind.backbone_batch(batch)["input_ids"].shape[0] == 6  # only the six real pairs are encoded
    alone = tokenizer("q2?", "s2b")["input_ids"]
    assert batch["input_ids"][0, 1, : len(alone)].tolist() == alone


def test_ranking_training_split_drops_queries_without_a_positive(tmp_path):
    t = Ranked()
    with pytest.warns(UserWarning, match=r"1 of 3 queries .* have no positive candidate .* their 1 pairs are left"):
        train = t.load("train", file=qnli_file(tmp_path))
    assert [q for q, _ in train.texts] == ["q1?", "q2?", "q1?", "q1?", "q2?"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(t.load("dev", file=qnli_file(tmp_path))) == 6  # kept for evaluation


def test_ranking_loss_features_and_logits_by_hand(tmp_path, tokenizer):
    t = Ranked()
    data = encode(t.load("dev", file=qnli_file(tmp_path)), tokenizer, 32, t)
    batch = data.collate([0, 1])  # q1: 3 candidates (positive: the second); q2: 2 (positive: the first)
    scores = torch.tensor([[1.0], [2.0], [0.5], [3.0], [1.0]])  # the real pairs in order
    logits = t.kind.logits(t, scores, batch)
    assert logits[0].tolist() == [1.0, 2.0, 0.5] and logits[1, :2].tolist() == [3.0, 1.0] and logits[1, 2] < -1e3
    loss = t.loss(logits, batch["labels"])
    expected = [-math.log(math.exp(2) / (math.exp(1) + math.exp(2) + math.exp(0.5))),
                -math.log(math.exp(3) / (math.exp(3) + math.exp(1)))]
    assert loss.tolist() == pytest.approx(expected, rel=1e-5)
    two_positives = torch.tensor([[1.0, 1.0, 0.0]])
    both = t.loss(torch.tensor([[1.0, 2.0, 0.5]]), two_positives)
    p = np.exp([1.0, 2.0, 0.5]) / np.exp([1.0, 2.0, 0.5]).sum()
    assert float(both) == pytest.approx(-(math.log(p[0]) + math.log(p[1])) / 2, rel=1e-5)
    features = torch.arange(10.0).view(5, 2)
    assert t.kind.features(t, features, batch).tolist() == [[2.0, 3.0], [7.0, 8.0]]


def test_ranking_metrics_restated_over_groups(tmp_path, tokenizer):
    t = Ranked()
    data = encode(t.load("dev", file=qnli_file(tmp_path)), tokenizer, 32, t)
    tops = [torch.tensor(1), torch.tensor(1), torch.tensor(0)]  # q1: right; q2: wrong; q3: no positive at all
    predictions, references = t.kind.score(t, data, tops)
    metrics = t.compute_metrics(predictions.numpy(), references.numpy())
    # by hand: a pair is predicted positive iff it is its query's top candidate
    pairs = [(0, 0), (1, 1), (0, 0),  # q1: s1a neg, s1b top+pos, s1c neg
             (1, 0), (0, 1),          # q2: s2a pos but not top, s2b top but neg
             (1, 0)]                  # q3: its only (negative) candidate is the top
    assert metrics["accuracy"] == pytest.approx(sum(p == y for p, y in pairs) / len(pairs))
    assert metrics["p_at_1"] == pytest.approx(1 / 3)


def test_ranking_present_ranks_each_querys_candidates(tmp_path, tokenizer):
    t = Ranked()
    examples = t.load("dev", file=qnli_file(tmp_path))
    data = encode(examples, tokenizer, 32, t)
    shown = t.kind.present(t, examples.columns(t), data,
                           [torch.tensor([0.0, 1.0, 3.0]), torch.tensor([2.0, -1.0]), torch.tensor([0.0])])
    assert shown[0]["query"] == "q1?"
    assert [c["candidate"] for c in shown[0]["ranking"]] == ["s1c", "s1b", "s1a"]
    assert [c["rank"] for c in shown[0]["ranking"]] == [1, 2, 3]
    assert sum(c["probability"] for c in shown[0]["ranking"]) == pytest.approx(1)


# ------------------------------------------------------------------------------------------ multi-label


class Topical(Task):
    name = "topical"
    type = "classification"
    multi_label = True
    text_columns = ("text",)
    label_column = "labels"
    labels = ("a", "b", "c")
    metrics = ("f1_micro", "f1_macro", "accuracy")


def test_multi_label_is_classification_with_a_set_of_labels(tmp_path, tokenizer):
    t = Topical()
    assert t.kind.name == "multi-label-classification" and not t.is_regression and t.num_outputs == 3
    path = write_jsonl(tmp_path / "m.jsonl", [{"text": "x", "labels": ["a", "c"]}, {"text": "y", "labels": []},
                                              {"text": "z", "labels": [1]}])
    examples = t.load("train", file=path)
    assert examples.labels == [[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    tsv = tmp_path / "m.tsv"
    tsv.write_text("text\tlabels\nx\tb, c\ny\t\n")
    assert t.load("train", file=str(tsv)).labels == [[0.0, 1.0, 1.0], [0.0, 0.0, 0.0]]
    data = encode(examples, tokenizer, 32, t)
    batch = data.collate([0, 1, 2])
    assert batch["labels"].dtype == torch.float32 and batch["labels"].shape == (3, 3)


def test_multi_label_unknown_label_names_the_line(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [{"text": "x", "labels": ["a"]}, {"text": "y", "labels": ["d"]}])
    with pytest.raises(DataError, match=rf"^{path}:2: unknown label 'd' for task 'topical'; valid labels: a, b, c$"):
        Topical().load("train", file=path)


def test_multi_label_loss_is_the_mean_binary_cross_entropy():
    t = Topical()
    logits, labels = torch.tensor([[2.0, -1.0, 0.0]]), torch.tensor([[1.0, 0.0, 1.0]])
    sigma = 1 / (1 + np.exp(-np.array([2.0, -1.0, 0.0])))
    expected = -(math.log(sigma[0]) + math.log(1 - sigma[1]) + math.log(sigma[2])) / 3
    assert float(t.loss(logits, labels)) == pytest.approx(expected, rel=1e-6)
    assert t.predict(logits).tolist() == [[1, 0, 0]]
    rows = t.kind.categorical(t, logits).softmax(dim=-1)
    assert rows[:, 1].tolist() == pytest.approx(sigma.tolist(), rel=1e-6)


def test_multi_label_metrics_restated_with_numpy():
    t = Topical()
    pred = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
    ref = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 1], [0, 0, 1]])
    tp, fp, fn = (pred & ref).sum(0), (pred & ~ref.astype(bool)).sum(0), (~pred.astype(bool) & ref).sum(0)
    micro = 2 * tp.sum() / (2 * tp.sum() + fp.sum() + fn.sum())
    per_label = [2 * a / (2 * a + b + c) if (2 * a + b + c) else 0.0 for a, b, c in zip(tp, fp, fn, strict=True)]
    exact = np.mean([(p == r).all() for p, r in zip(pred, ref, strict=True)])
    metrics = t.compute_metrics(pred, ref)
    assert metrics == pytest.approx({"f1_micro": micro, "f1_macro": np.mean(per_label), "accuracy": exact})


def test_multi_label_present_gives_the_set_and_every_probability(tokenizer):
    t = Topical()
    shown = t.kind.present(t, {}, None, [torch.tensor([1.0, -2.0, 0.5])])
    assert shown[0]["labels"] == ["a", "c"] and set(shown[0]["probabilities"]) == {"a", "b", "c"}
    assert shown[0]["probabilities"]["b"] == pytest.approx(1 / (1 + math.exp(2)), abs=1e-6)


def test_macro_f1_of_a_single_label_task_restated():
    from mtl.data import metrics

    pred, ref = np.array([0, 1, 2, 2, 1, 0]), np.array([0, 2, 2, 2, 1, 1])
    f1s = []
    for c in range(3):
        tp = np.sum((pred == c) & (ref == c))
        f1s.append(2 * tp / (np.sum(pred == c) + np.sum(ref == c)))
    assert metrics.compute(["f1_macro"], pred, ref)["f1_macro"] == pytest.approx(np.mean(f1s))


def test_the_demo_files_of_the_pooled_types_are_reproduced_by_their_generator(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, str(root / "tools" / "make_demo_choice.py"), str(tmp_path)], check=True,
                   capture_output=True)
    made = sorted(p.name for p in tmp_path.iterdir())
    assert made == sorted(f"{t}_{s}.{x}" for t, x in (("choice", "jsonl"), ("ranking", "tsv"), ("topics", "jsonl"))
                          for s in ("train", "dev"))
    for name in made:
        assert (tmp_path / name).read_bytes() == (root / "core" / "data" / "demo" / name).read_bytes(), name


def test_demo_tasks_of_the_pooled_types_declare_what_their_type_needs():
    for name, kind in (("demo-choice", "multiple-choice"), ("demo-ranking", "ranking"),
                       ("demo-topics", "multi-label-classification")):
        t = task(name)
        assert t.kind.name == kind
        t.kind.check(t)
        assert len(t.load("dev")) > 0


@pytest.mark.parametrize("rows,fragment", [
    ([{"context": "c", "prefix": "p", "ending0": "a", "ending1": "b", "ending2": "c", "ending3": "d", "label": 4}],
     ":1: label 4 is out of range for task 'demo-choice' (4 choices: 0-3)"),
    ([{"context": "c", "prefix": "p", "ending0": "a", "ending1": "b", "ending2": "c", "label": 0}],
     ":1: missing column 'ending3' of task 'demo-choice'"),
])
def test_mtl_run_refuses_a_bad_multiple_choice_file_in_one_line(tmp_path, rows, fragment):
    from conftest import assert_one_line_error, invoke_cli

    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    result = invoke_cli("run", "--target", "demo-choice", "--data", f"demo-choice.train={path}", "--backbone",
                        "tiny", "--max-steps", "1", "-o", str(tmp_path / "run"))
    assert_one_line_error(result, path + fragment)
    assert not (tmp_path / "run").exists()
