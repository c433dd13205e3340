"""Task type ``extractive-qa`` (SQuAD v1.1, Rajpurkar et al. 2016): rows, windows over a long context, the span
head's loss, the answer chosen over windows, SQuAD's exact match and F1 (restated here), SQuAD's nested JSON."""

from __future__ import annotations

import json
import math
import re
import string

import pytest
import torch
from transformers import AutoTokenizer

from mtl import Task
from mtl.contract import loader, types
from mtl.contract.types.extractive_qa import PAD_LOGIT
from mtl.data.batching import encode
from mtl.errors import DataError
from mtl.plugins.backbones.minilm import model_path


class QA(Task):
    name = "qa-test"
    type = "extractive-qa"
    text_columns = ("question", "context")
    labels = ()
    metrics = ("f1", "exact_match")


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(model_path())


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


LONG_CONTEXT = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau "
                "upsilon phi chi psi omega. The treasure lies under the old oak tree.")
ANSWER = "the old oak tree"


def qa_rows(tmp_path, rows):
    return QA().load("train", file=str(write_jsonl(tmp_path / "rows.jsonl", rows)))


def long_example():
    start = LONG_CONTEXT.index(ANSWER)
    return {"id": "x", "question": "Where is the treasure?", "context": LONG_CONTEXT,
            "answers": {"text": [ANSWER], "answer_start": [start]}}


# ------------------------------------------------------------------------------------------------ windows


def test_a_long_context_is_cut_into_windows_and_the_answer_is_labelled_in_the_second(tmp_path, tokenizer):
    task = QA()
    task.stride = 4
    examples = qa_rows(tmp_path, [long_example()])
    data = encode(examples, tokenizer, 32, task)
    table = data.table
    assert len(data) == 2 and table["example"] == [0, 0] and data.examples == 1
    question = tokenizer("Where is the treasure?", add_special_tokens=False)["input_ids"]
    for w in range(2):
        ids = table["input_ids"][w]
        assert len(ids) <= 32
        # [CLS] question [SEP] context [SEP]; the question's tokens carry no context offsets
        assert ids[0] == tokenizer.cls_token_id and ids[1 : 1 + len(question)] == question
        assert all(o == [-1, -1] for o in table["offsets"][w][: len(question) + 2])
    # the first window does not hold the answer: its label points at [CLS] twice
    first_text = [LONG_CONTEXT[s:e] for s, e in table["offsets"][0] if s >= 0]
    assert "oak" not in first_text and table["labels"][0] == [0, 0]
    # the second one does: its label is the answer's first and last token
    start, end = table["labels"][1]
    assert 0 < start <= end
    answer_ids = tokenizer(ANSWER, add_special_tokens=False)["input_ids"]
    assert table["input_ids"][1][start : end + 1] == answer_ids
    offsets = table["offsets"][1]
    assert LONG_CONTEXT[offsets[start][0] : offsets[end][1]] == ANSWER
    # consecutive windows share `stride` context tokens
    context = [[i for i, o in zip(table["input_ids"][w], table["offsets"][w], strict=True) if o[0] >= 0]
               for w in range(2)]
    assert context[0][-4:] == context[1][:4]
    # the batch is padded, labels are one (start, end) pair per window
    batch = data.collate([0, 1])
    assert batch["labels"].tolist() == [[0, 0], [start, end]]
    assert batch["input_ids"].shape[0] == 2 and batch["attention_mask"].sum(1).tolist() == table["length"]


def test_a_stride_too_large_for_the_window_is_narrowed_and_a_long_question_cut(tmp_path, tokenizer):
    row = long_example()
    row["question"] = " ".join(["where"] * 40) + " is the treasure?"
    data = encode(qa_rows(tmp_path, [row]), tokenizer, 32, QA())  # stride 128 > the room of a window
    assert len(data) > 2 and all(length <= 32 for length in data.lengths)
    labelled = [tuple(label) for label in data.table["labels"] if label != [0, 0]]
    assert labelled  # the answer is still found in some window


# ------------------------------------------------------------------------------------------------ bad rows


def test_an_answer_not_at_its_answer_start_is_a_one_line_error_naming_the_file_and_line(tmp_path):
    good = long_example()
    bad = dict(good, answers={"text": ["the old elm tree"], "answer_start": [good["answers"]["answer_start"][0]]})
    path = write_jsonl(tmp_path / "bad.jsonl", [good, bad])
    with pytest.raises(DataError) as info:
        QA().load("train", file=str(path))
    message = str(info.value)
    assert "\n" not in message and f"{path}:2" in message and "'the old elm tree'" in message
    assert "not at answer_start" in message


@pytest.mark.parametrize("change,fragment", [
    (dict(context=None), "no 'context'"),
    (dict(question=""), "'question' must be a non-empty string"),
    (dict(answers={"text": ["oak"], "answer_start": []}), "one answer_start per text"),
    (dict(answers={"text": ["oak"], "answer_start": ["x"]}), "answer_start must be an integer"),
    (dict(answers={"text": [ANSWER], "answer_start": [10_000]}), "not at answer_start 10000"),
])
def test_rows_that_do_not_fit_are_named(tmp_path, change, fragment):
    row = {k: v for k, v in {**long_example(), **change}.items() if v is not None}
    path = write_jsonl(tmp_path / "rows.jsonl", [row])
    with pytest.raises(DataError, match=re.escape(fragment)) as info:
        QA().load("train", file=str(path))
    assert f"{path}:1" in str(info.value)


# ------------------------------------------------------------------------------------------------ SQuAD JSON


def test_squad_nested_json_is_read_one_row_per_question(tmp_path):
    context = "Paris is the capital of France. It lies on the Seine."
    document = {"version": "1.1", "data": [
        {"title": "Paris", "paragraphs": [
            {"context": context, "qas": [
                {"id": "q1", "question": "What is the capital of France?",
                 "answers": [{"text": "Paris", "answer_start": 0}, {"text": "Paris", "answer_start": 0}]},
                {"id": "q2", "question": "Which river?", "answers": [{"text": "the Seine", "answer_start": 43}]},
            ]},
            {"context": "Lyon is in France.", "qas": [
                {"id": "q3", "question": "Where is Lyon?", "answers": [{"text": "France", "answer_start": 11}]}]},
        ]}]}
    path = tmp_path / "dev-v1.1.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    examples = QA().load("dev", file=str(path))
    rows = examples.rows
    assert rows["id"] == ["q1", "q2", "q3"]
    assert rows["context"] == [context, context, "Lyon is in France."]
    assert rows["label"][1] == {"text": ["the Seine"], "answer_start": [43]}
    assert rows["label"][0]["text"] == ["Paris", "Paris"]
    document["data"][0]["paragraphs"][1]["qas"][0]["answers"][0]["answer_start"] = 3
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(DataError) as info:
        QA().load("dev", file=str(path))
    assert f"{path} data[0].paragraphs[1].qas[0]" in str(info.value) and "'France'" in str(info.value)


def test_hub_rows_are_read_as_the_squad_dataset_has_them():
    from datasets import Dataset

    from mtl.data.records import from_dataset

    context = "Paris is the capital of France."
    dataset = Dataset.from_list([{"id": "a", "title": "Paris", "context": context, "question": "Capital?",
                                  "answers": {"text": ["Paris", "Paris"], "answer_start": [0, 0]}},
                                 {"id": "b", "title": "Paris", "context": context, "question": "Of what?",
                                  "answers": {"text": ["France"], "answer_start": [3]}}])
    with pytest.raises(DataError, match=r"rajpurkar/squad row 1: answer 'France' is not at answer_start 3"):
        from_dataset(QA(), "dev", dataset, "rajpurkar/squad", None)
    examples = from_dataset(QA(), "dev", dataset.select([0]), "rajpurkar/squad", None)
    assert examples.rows["label"] == [{"text": ["Paris", "Paris"], "answer_start": [0, 0]}]


# ------------------------------------------------------------------------------------------------ head and loss


def test_the_loss_is_the_mean_of_the_start_and_end_cross_entropies_over_the_window():
    kind = types.get("extractive-qa")
    task = QA()
    torch.manual_seed(0)
    raw = torch.randn(2, 5, 2)
    batch = {"attention_mask": torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])}
    logits = kind.logits(task, raw, batch)
    assert (logits[1, 3:] == PAD_LOGIT).all() and torch.equal(logits[0], raw[0])
    labels = torch.tensor([[1, 3], [2, 2]])
    loss = kind.loss(task, logits, labels)

    def ce(row, target, n):  # -log softmax over the window's n tokens
        row = row[:n].double()
        return float(row.exp().sum().log() - row[target])

    expected = [(ce(raw[0, :, 0], 1, 5) + ce(raw[0, :, 1], 3, 5)) / 2,
                (ce(raw[1, :, 0], 2, 3) + ce(raw[1, :, 1], 2, 3)) / 2]
    assert loss.shape == (2,) and torch.allclose(loss.double(), torch.tensor(expected, dtype=torch.double),
                                                 atol=1e-5)
    rows = kind.categorical(task, logits)
    assert rows.shape == (4, 5) and torch.equal(rows[2], logits[1, :, 0]) and torch.equal(rows[3], logits[1, :, 1])
    # padding has no probability, yet stays finite: a KL divergence of two windows' rows is a number
    log_p, log_q = rows.log_softmax(-1), (rows * 0.5).log_softmax(-1)
    kl = (log_p.exp() - log_q.exp()) * (log_p - log_q)
    assert rows.softmax(-1)[2:, 3:].max() == 0 and torch.isfinite(kl).all()


def test_the_answer_is_the_best_valid_span_over_the_windows():
    from mtl.contract.types.qa_spans import best_span

    context = "aa bb cc dd ee"
    # window 1: tokens 0-1 are the question; window 2 repeats dd ee
    w1 = [[-1, -1], [-1, -1], [0, 2], [3, 5], [6, 8], [9, 11]]
    w2 = [[-1, -1], [-1, -1], [9, 11], [12, 14]]
    l1 = torch.full((6, 2), -5.0)
    l1[0] = torch.tensor([9.0, 9.0])  # the question's tokens score best but are no answer
    l1[4, 0], l1[2, 1] = 3.0, 3.0  # end before start: no answer
    l1[3, 0], l1[3, 1] = 1.0, 1.5  # "bb": 2.5
    l2 = torch.full((5, 2), -5.0)  # padded one past its 4 tokens
    l2[4] = torch.tensor([50.0, 50.0])
    l2[2, 0], l2[3, 1] = 1.0, 2.0  # "dd ee": 3.0, the best
    span = best_span([(l1, w1), (l2, w2)], context, max_answer_length=30)
    assert (span["answer"], span["start"], span["end"]) == ("dd ee", 9, 14)
    # its probability: softmax over every valid candidate span of both windows
    scores = [float(l1[i, 0] + l1[j, 1]) for i in range(2, 6) for j in range(i, 6)]
    scores += [float(l2[i, 0] + l2[j, 1]) for i in range(2, 4) for j in range(i, 4)]
    assert span["score"] == pytest.approx(math.exp(3.0) / sum(math.exp(s) for s in scores))
    short = best_span([(l1, w1), (l2, w2)], context, max_answer_length=1)  # "dd ee" is two tokens
    assert short["answer"] == "bb"


# ------------------------------------------------------------------------------------------------ SQuAD metrics


def squad_normalize(text):
    """SQuAD v1.1's normalisation, restated: lowercase; drop punctuation; drop a/an/the words; single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    words = [w for w in text.split() if w not in ("a", "an", "the")]
    return " ".join(words)


def squad_f1(prediction, gold):
    p, g = squad_normalize(prediction).split(), squad_normalize(gold).split()
    common = 0
    remaining = list(g)
    for token in p:
        if token in remaining:
            remaining.remove(token)
            common += 1
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def test_squad_definitions_restated_on_known_cases():
    assert squad_normalize("The  Eiffel Tower!") == "eiffel tower"
    assert squad_f1("tower in Paris", "the Eiffel Tower") == pytest.approx(0.4)  # 1 shared of 3 and of 2
    assert squad_f1("a cat, a cat", "cat") == pytest.approx(2 * 0.5 * 1 / 1.5)  # tokens counted with multiplicity


def test_exact_match_and_f1_of_the_chosen_answers_equal_squads_definitions(tmp_path, tokenizer):
    kind = types.get("extractive-qa")
    task = QA()
    contexts = ["The Eiffel Tower stands in Paris, France.", "Water boils at 100 Degrees at sea level.",
                "An apple a day keeps the doctor away."]
    golds = [(["The Eiffel Tower", "Eiffel Tower"], [0, 4]), (["100", "100 Degrees"], [15, 15]), (["the doctor"], [21])]
    rows = [{"id": str(i), "question": "What?", "context": c, "answers": {"text": g, "answer_start": s}}
            for i, (c, (g, s)) in enumerate(zip(contexts, golds, strict=True))]
    data = encode(qa_rows(tmp_path, rows), tokenizer, 64, task)
    # logits that make a chosen span of each context the best one
    wanted = ["Eiffel Tower stands", "100 Degrees", "apple a day keeps the doctor away"]
    predictions = []
    for w, offsets in enumerate(data.table["offsets"]):
        example = data.table["example"][w]
        first = contexts[example].index(wanted[example])
        last = first + len(wanted[example])
        logits = torch.zeros(len(offsets) + 3, 2)  # padded past the window
        logits[[k for k, o in enumerate(offsets) if o[0] == first][0], 0] = 5.0
        logits[[k for k, o in enumerate(offsets) if o[0] >= 0 and o[1] == last][0], 1] = 5.0
        predictions.append(logits)
    spans = kind.answers_of(task, data, predictions)
    texts = [s["answer"] for s in spans]
    assert texts == wanted
    scores, references = kind.score(task, data, predictions)
    assert references.tolist() == [[0, 0], [1, 1], [2, 2]]
    em = [max(float(squad_normalize(t) == squad_normalize(g)) for g in gs) for t, (gs, _) in zip(texts, golds,
                                                                                                   strict=True)]
    f1 = [max(squad_f1(t, g) for g in gs) for t, (gs, _) in zip(texts, golds, strict=True)]
    assert em == [0.0, 1.0, 0.0] and f1[0] == pytest.approx(0.8) and f1[1] == 1.0
    assert f1[2] == pytest.approx(2 * (1 / 5) / (1 / 5 + 1))  # 1 shared of 5 and of 1
    assert scores.shape == (3, 2) and torch.allclose(scores, torch.tensor([em, f1], dtype=torch.float64).T)
    metrics = kind.compute_metrics(task, scores.numpy(), references.numpy())
    assert list(metrics) == ["f1", "exact_match"]  # the primary metric first
    assert metrics["f1"] == pytest.approx(sum(f1) / 3) and metrics["exact_match"] == pytest.approx(sum(em) / 3)


def test_built_in_tasks_are_registered_with_their_type():
    for name in ("squad", "demo-qa"):
        task = loader.create("task", name)
        assert task.kind.name == "extractive-qa" and task.num_outputs == 2 and task.primary_metric == "f1"
        task.kind.check(task)
    squad = loader.create("task", "squad")
    assert squad.hub == ("rajpurkar/squad", None) and squad.hub_splits == {"train": "train", "dev": "validation"}


def test_the_demo_task_has_long_contexts_that_need_two_windows(tokenizer):
    task = loader.create("task", "demo-qa")
    train, dev = task.load("train"), task.load("dev")
    assert (len(train), len(dev)) == (300, 100)
    data = encode(dev, tokenizer, 64, task)
    windows = torch.bincount(torch.tensor(data.table["example"]))
    assert int(windows.max()) == 2 and 10 <= int((windows == 2).sum()) < 60
    # some answers are only in the second window of their example
    second = [w for w, e in enumerate(data.table["example"]) if w > 0 and data.table["example"][w - 1] == e]
    assert any(data.table["labels"][w] != [0, 0] and data.table["labels"][w - 1] == [0, 0] for w in second)
