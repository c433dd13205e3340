"""The token-classification type: reading sentences (JSONL, CoNLL text) and their bad rows, the alignment of tags to
sub-words, the per-instance loss, word-level scoring, entity-level metrics restated by hand, what `mtl predict`
shows, and the export's logits."""

from __future__ import annotations

import json

import pytest
import torch

import mtl
from mtl.contract.types.tagging import IGNORE
from mtl.data.batching import Encoded
from mtl.errors import DataError

TAGS = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG")  # demo-entities' tags


def task(name: str = "demo-entities") -> mtl.Task:
    return mtl.create("task", name)


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from mtl.plugins.backbones.minilm import model_path

    return AutoTokenizer.from_pretrained(model_path())


def encode(t, records: list[dict], tokenizer, max_length: int = 64) -> tuple[dict, Encoded]:
    rows: dict[str, list] = {}
    for i, record in enumerate(records):
        for key, value in t.kind.convert_row(t, record, f"row {i}", labelled="ner_tags" in record).items():
            rows.setdefault(key, []).append(value)
    rows["__index__"] = list(range(len(records)))
    table = t.kind.encode_batch(t, rows, tokenizer, max_length)
    return rows, Encoded(table, t, tokenizer.pad_token_id)


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------- the tasks


def test_the_tasks_are_registered_with_their_type():
    for name in ("conll2003", "demo-entities"):
        assert task(name).kind.name == "token-classification" and task(name).kind.reads == "sequence"
    assert task("conll2003").labels == ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC",
                                        "I-MISC")


def test_the_demo_files_are_the_generators_and_well_formed(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, str(root / "tools" / "make_demo_entities.py"), str(tmp_path)], check=True,
                   capture_output=True)
    for split, size in (("train", 300), ("dev", 100)):
        shipped = root / "core" / "data" / "demo" / f"entities_{split}.jsonl"
        assert (tmp_path / shipped.name).read_bytes() == shipped.read_bytes()
        examples = task().load(split)
        assert len(examples) == size
        assert all(len(w) == len(t) for w, t in zip(examples.rows["words"], examples.labels, strict=True))
        # every entity type is there, single and multi-word
        flat = [TAGS[i] for tags in examples.labels for i in tags]
        assert {"B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"} <= set(flat)


# ---------------------------------------------------------------------------------------------- reading


CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O
. . O O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O

BRUSSELS NNP B-NP B-LOC
"""


def test_the_conll_reader_gives_one_sentence_per_block_word_first_tag_last(tmp_path):
    path = write(tmp_path / "train.conll", CONLL)
    examples = task("conll2003").load("train", file=str(path))
    assert examples.rows["words"] == [["EU", "rejects", "German", "call", "."], ["Peter", "Blackburn"], ["BRUSSELS"]]
    labels = task("conll2003").labels
    assert [[labels[i] for i in tags] for tags in examples.labels] == [
        ["B-ORG", "O", "B-MISC", "O", "O"], ["B-PER", "I-PER"], ["B-LOC"]]
    # .txt is CoNLL text too, and --limit counts sentences
    assert len(task("conll2003").load("train", file=str(write(tmp_path / "t.txt", CONLL)), limit=2)) == 2


def test_jsonl_rows_take_tag_names_or_indices(tmp_path):
    lines = [{"tokens": ["Anna", "visited", "Oslo"], "ner_tags": ["B-PER", "O", "B-LOC"]},
             {"tokens": ["Oslo"], "ner_tags": [3]}]
    path = write(tmp_path / "d.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n")
    examples = task().load("dev", file=str(path))
    assert examples.labels == [[1, 0, 3], [3]]


@pytest.mark.parametrize("text,fragments", [
    ('{"tokens": ["a", "b", "c"], "ner_tags": ["O", "O", "O"]}\n{"tokens": ["a", "b", "c"], "ner_tags": ["O", "O"]}',
     ["d.jsonl:2", "3 words but 2 tags"]),
    ('{"tokens": ["Anna"], "ner_tags": ["B-FOO"]}', ["d.jsonl:1", "'B-FOO'", "'Anna'", "not one of"]),
    ('{"tokens": ["Anna"], "ner_tags": [7]}', ["d.jsonl:1", "index 7", "0..6"]),
    ('{"tokens": 3, "ner_tags": [0]}', ["d.jsonl:1", "'tokens' must be a list of words"]),
    ('{"words": ["a"], "ner_tags": ["O"]}', ["d.jsonl:1", "no column 'tokens'"]),
    ('{"tokens": ["a"]}', ["d.jsonl:1", "no column 'ner_tags'"]),
])
def test_a_row_that_does_not_fit_is_a_one_line_error_naming_file_and_line(tmp_path, text, fragments):
    path = write(tmp_path / "d.jsonl", text + "\n")
    with pytest.raises(DataError) as info:
        task().load("train", file=str(path))
    message = str(info.value)
    assert "\n" not in message and all(f in message for f in fragments), message


def test_a_bad_conll_line_is_named_by_its_own_line(tmp_path):
    path = write(tmp_path / "bad.conll", CONLL.replace("Blackburn NNP I-NP I-PER", "Blackburn NNP I-NP I-PERSON"))
    with pytest.raises(DataError, match=rf"{path}:10: tag 'I-PERSON' of 'Blackburn' is not one of"):
        task("conll2003").load("train", file=str(path))
    path = write(tmp_path / "short.conll", "EU B-ORG\nrejects\n")
    with pytest.raises(DataError, match=rf"{path}:2: expected a word and its tag"):
        task("conll2003").load("train", file=str(path))


# ---------------------------------------------------------------------------------------------- instances


def test_the_tag_of_a_word_goes_to_its_first_subword_the_rest_and_special_tokens_are_ignored(tokenizer):
    words = ["Wolfeschlegelsteinhausen", "visited", "Reykjavik", "."]
    _, data = encode(task(), [{"tokens": words, "ner_tags": ["B-PER", "O", "B-LOC", "O"]}], tokenizer)
    tokens = tokenizer.convert_ids_to_tokens(data.table["input_ids"][0])
    assert tokens == ["[CLS]", "wolfe", "##sch", "##leg", "##els", "##tein", "##hausen", "visited", "reykjavik", ".",
                      "[SEP]"]
    x = IGNORE
    assert data.table["labels"][0] == [x, 1, x, x, x, x, x, 0, 3, 0, x]
    # truncated at max_length: the words cut off have no labelled token
    _, short = encode(task(), [{"tokens": words, "ner_tags": ["B-PER", "O", "B-LOC", "O"]}], tokenizer, max_length=9)
    assert short.table["labels"][0] == [x, 1, x, x, x, x, x, 0, x]
    # a batch pads labels with -100 to its longest instance
    batch = data.collate([0])
    assert batch["labels"].tolist() == [[x, 1, x, x, x, x, x, 0, 3, 0, x]]


def test_the_loss_of_an_instance_is_the_mean_cross_entropy_of_its_labelled_tokens():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    labels = torch.tensor([[IGNORE, 1, IGNORE, 0, IGNORE], [IGNORE, 4, 4, 2, 6]])
    got = task().loss(logits, labels)
    expected = []
    for i in range(2):
        terms = [-torch.log_softmax(logits[i, p], dim=-1)[labels[i, p]] for p in range(5) if labels[i, p] != IGNORE]
        expected.append(sum(terms) / len(terms))
    assert got.shape == (2,) and torch.allclose(got, torch.stack(expected), atol=1e-6)


def test_scoring_is_per_word_and_leaves_out_the_words_past_max_length(tokenizer):
    t = task()
    records = [{"tokens": ["Wolfeschlegelsteinhausen", "visited", "Reykjavik", "."],
                "ner_tags": ["B-PER", "O", "B-LOC", "O"]},
               {"tokens": ["Anna", "Smith"], "ner_tags": ["B-PER", "I-PER"]}]
    _, data = encode(t, records, tokenizer, max_length=9)
    # one prediction per token of a padded batch (width 12); the second sentence is [CLS] anna smith [SEP]
    first = torch.tensor([0, 1, 5, 5, 5, 5, 5, 2, 0, 0, 0, 0])
    second = torch.tensor([0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    predictions, references = t.kind.score(t, data, [first, second])
    # the first sentence keeps its first two words (Reykjavik and . are past max_length 9)
    assert references.tolist() == [[1, 0], [1, 2]]
    assert predictions.tolist() == [[1, 2], [1, 1]]


# ---------------------------------------------------------------------------------------------- metrics


def ids(*tags: str) -> list[int]:
    return [TAGS.index(tag) for tag in tags] + [IGNORE] * (4 - len(tags))


def test_entity_f1_precision_recall_and_accuracy_match_a_count_by_hand():
    gold = [ids("B-PER", "I-PER", "O", "B-LOC"), ids("B-ORG", "I-ORG", "I-ORG", "O"), ids("O", "B-LOC", "O"),
            ids("O", "O")]
    pred = [ids("B-PER", "I-PER", "O", "B-ORG"), ids("B-ORG", "I-ORG", "O", "O"), ids("O", "I-LOC", "O"),
            ids("B-PER", "O")]
    # gold entities: PER 0-1, LOC 3 | ORG 0-2 | LOC 1 | none                          -> 4
    # predicted:     PER 0-1, ORG 3 | ORG 0-1 | LOC 1 (an I- after O starts one) | PER 0  -> 5
    # exact matches (type, first and last word): PER 0-1 of the first, LOC 1 of the third -> 2
    precision, recall = 2 / 5, 2 / 4
    f1 = 2 * precision * recall / (precision + recall)
    # words: 3 of 4, 3 of 4, 2 of 3 (the tag I-LOC is not B-LOC), 1 of 2
    accuracy = (3 + 3 + 2 + 1) / 13
    pred_t, gold_t = torch.tensor(pred), torch.tensor(gold)
    # the padding of the predictions is whatever the model said: only the reference's -100 decides
    pred_t[pred_t == IGNORE] = 0
    got = task().compute_metrics(pred_t.numpy(), gold_t.numpy())
    assert got == pytest.approx({"f1": f1, "precision": precision, "recall": recall, "accuracy": accuracy})


def test_metrics_of_resampled_rows_are_those_of_the_sentences_drawn():
    """A bootstrap draws rows (sentences): two copies of one sentence score as that sentence does."""
    gold = torch.tensor([ids("B-PER", "I-PER", "O", "B-LOC"), ids("B-ORG", "O")])
    pred = torch.tensor([ids("B-PER", "I-PER", "O", "O"), ids("B-ORG", "O")])
    one = task().compute_metrics(pred[[0]].numpy(), gold[[0]].numpy())
    assert one == pytest.approx({"f1": 2 / 3, "precision": 1.0, "recall": 0.5, "accuracy": 0.75})
    assert task().compute_metrics(pred[[0, 0]].numpy(), gold[[0, 0]].numpy()) == pytest.approx(one)


# ---------------------------------------------------------------------------------------------- present


def test_present_gives_entities_with_their_words_and_character_offsets_in_the_input(tokenizer):
    t = task()
    text = "Anna  Smith flew to New York ."
    rows, data = encode(t, [{"tokens": text}, {"tokens": ["Acme", "hired", "Omar"]}], tokenizer)
    wanted = [["B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC", "O"], ["B-ORG", "O", "B-PER"]]
    logits = []
    for k, tags in enumerate(wanted):
        scores = torch.zeros(len(data.table["input_ids"][k]), len(TAGS))
        for position, word in enumerate(data.table["word_ids"][k]):
            scores[position, TAGS.index(tags[word]) if word >= 0 else 0] = 5.0
        logits.append(scores)
    shown = t.kind.present(t, rows, data, logits)
    assert [(e["type"], e["text"], e["start"], e["end"], e["words"]) for e in shown[0]["entities"]] == [
        ("PER", "Anna  Smith", 0, 11, ["Anna", "Smith"]), ("LOC", "New York", 20, 28, ["New", "York"])]
    assert shown[0]["tags"] == wanted[0] and shown[0]["text"] == text
    # a list of words: offsets into the words joined by single spaces
    assert shown[1]["text"] == "Acme hired Omar"
    assert [(e["type"], e["start"], e["end"]) for e in shown[1]["entities"]] == [("ORG", 0, 4), ("PER", 11, 15)]
    assert 0 < shown[1]["entities"][0]["score"] <= 1
    json.dumps(shown)


# ---------------------------------------------------------------------------------------------- export


def test_the_export_is_a_plain_token_classifier_with_the_models_logits(tmp_path, tokenizer):
    from transformers import AutoModelForTokenClassification

    from mtl.model.multitask import MultiTaskModel
    from mtl.runs.families import build_exported

    t = task()
    t.name = "demo-entities"
    torch.manual_seed(0)
    backbone = mtl.create("backbone", "tiny")
    model = MultiTaskModel(backbone, {"demo-entities": t.num_outputs}, 0.1, tasks={"demo-entities": t}).eval()
    with torch.no_grad():
        model.heads["demo-entities"].classifier.bias.normal_()
    head = model.heads["demo-entities"]
    exported = build_exported(t.kind.export_kind, backbone.encoder, None, head.classifier,
                              labels=t.kind.export_labels(t), problem_type=t.kind.problem_type(t),
                              dropout=float(head.dropout.p))
    exported.save_pretrained(tmp_path)
    loaded = AutoModelForTokenClassification.from_pretrained(tmp_path).eval()
    assert loaded.config.id2label == dict(enumerate(TAGS))
    _, data = encode(t, [{"tokens": ["Anna", "visited", "Oslo"]}, {"tokens": ["Wolfeschlegelsteinhausen", "."]}],
                     tokenizer)
    batch = data.collate([0, 1])
    with torch.no_grad():
        expected = model("demo-entities", batch)[0]
        got = t.kind.exported_logits(t, loaded, batch)
    assert expected.shape == got.shape == (2, len(batch["input_ids"][0]), 7)
    assert torch.allclose(got, expected, atol=1e-5)


def test_the_bench_bootstrap_resamples_sentences_and_scores_them_with_the_tagging_metrics():
    from mtl.study import statistics as stats
    from mtl.study.bench.results import Predictions

    metric = Predictions("demo-entities", "dev").metric("f1")
    assert callable(metric)  # not the GLUE F1 of class 1
    gold = torch.tensor([ids("B-PER", "I-PER", "O"), ids("O", "B-LOC"), ids("B-ORG", "O", "O", "O"),
                         ids("O", "O", "B-PER"), ids("B-LOC", "I-LOC"), ids("O", "B-ORG", "I-ORG")])
    mine = gold.clone()  # every entity found
    theirs = gold.clone()
    theirs[3:][theirs[3:] != IGNORE] = 0  # the last three sentences' entities missed: P 3/3, R 3/6, F1 2/3
    interval = stats.paired_bootstrap(metric, [mine.numpy()], [theirs.numpy()], [gold.numpy()], resamples=200)
    assert interval["examples"] == 6
    assert interval["delta"] == pytest.approx(1 - 2 / 3)
    assert 0.0 <= interval["low"] <= interval["delta"] <= interval["high"] <= 1.0


def test_hub_rows_with_class_label_tags_are_read_as_the_hub_gives_them():
    """eriktks/conll2003's shape: ``tokens`` and ``ner_tags`` (ClassLabel indices), plus columns the task ignores."""
    import datasets

    from mtl.data.records import from_dataset

    t = task("conll2003")
    names = list(t.labels)
    features = datasets.Features({"id": datasets.Value("string"),
                                  "tokens": datasets.Sequence(datasets.Value("string")),
                                  "pos_tags": datasets.Sequence(datasets.Value("int32")),
                                  "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names))})
    rows = {"id": ["0", "1"], "tokens": [["EU", "rejects", "German", "call"], ["Peter", "Blackburn"]],
            "pos_tags": [[22, 42, 16, 21], [22, 22]], "ner_tags": [[3, 0, 7, 0], [1, 2]]}
    examples = from_dataset(t, "train", datasets.Dataset.from_dict(rows, features=features), "eriktks/conll2003",
                            None)
    assert examples.rows["words"] == rows["tokens"] and examples.labels == rows["ner_tags"]
    rows["ner_tags"][1] = [1]
    with pytest.raises(DataError, match=r"^eriktks/conll2003 row 1: 2 words but 1 tags$"):
        from_dataset(t, "train", datasets.Dataset.from_dict(rows, features=features), "eriktks/conll2003", None)
