"""Token classification in runs: it trains with every kind of strategy, mixes with classification tasks as target or
auxiliary, learns its demo, resumes exactly after a crash, exports to a plain AutoModelForTokenClassification with
the run's logits, and `mtl predict` prints entities with character offsets."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import assert_one_line_error, invoke_cli
from helpers.runs import config, run_files, whole_and_crashed

import mtl
from mtl.contract.types.tagging import IGNORE
from mtl.runs import files as run_files_module
from mtl.runs.folder import RunFolder
from mtl.training.trainer import Trainer

TAGGING = dict(target="demo-entities", aux=["demo-paraphrase"])
METRICS = {"f1", "precision", "recall", "accuracy"}


def small(path, **overrides):
    values = dict(TAGGING, epochs=1, limit=32, eval_limit=24, batch_size=8, checkpoint_every=None)
    values.update(overrides)
    return config(path, **values)


def dev_word_counts(n: int) -> list[int]:
    examples = mtl.create("task", "demo-entities").load("dev", limit=n)
    return [len(words) for words in examples.rows["words"]]


@pytest.mark.slow
@pytest.mark.parametrize("weighting,sampler", [("uniform", "proportional"), ("mamt", "adaptive"),
                                               ("siwlm", "sequential"), ("pcgrad", "proportional")])
def test_token_classification_trains_with_each_kind_of_strategy(tmp_path, weighting, sampler):
    Trainer(small(tmp_path, weighting=weighting, sampler=sampler)).train()
    evals, metrics = run_files(tmp_path)
    scores = evals["demo-entities"]["dev"]
    assert set(scores) == METRICS and all(0.0 <= v <= 1.0 for v in scores.values())
    losses = [json.loads(line) for line in metrics.splitlines()]
    tagged = [r["loss.demo-entities"] for r in losses if "loss.demo-entities" in r]
    assert tagged and all(math.isfinite(x) and x > 0 for x in tagged)
    # the stored predictions are word-level: one row per dev sentence, one tag per word (max_length 32 keeps all)
    stored = run_files_module.load_predictions(tmp_path / "predictions.safetensors")["splits"]["demo-entities.dev"]
    predicted, gold = stored["predictions"], stored["labels"]
    assert predicted.shape == gold.shape and predicted.shape[0] == 24
    assert [int((row != IGNORE).sum()) for row in gold] == dev_word_counts(24)


@pytest.mark.slow
def test_the_demo_is_learnable_by_the_tiny_model(tmp_path):
    Trainer(config(tmp_path, target="demo-entities", aux=[], epochs=1, limit=None, eval_limit=None, batch_size=16,
                   lr=3e-3, checkpoint_every=None)).train()
    scores = run_files(tmp_path)[0]["demo-entities"]["dev"]
    assert scores["f1"] > 0.3 and scores["accuracy"] > 0.8, scores  # one epoch: about 0.6 and 0.9


@pytest.mark.slow
@pytest.mark.parametrize("target,aux", [("demo-entities", "demo-paraphrase"), ("demo-paraphrase", "demo-entities")])
def test_a_tagging_target_with_a_classification_auxiliary_and_the_reverse(tmp_path, target, aux):
    out = tmp_path / "run"
    result = invoke_cli("run", "--target", target, "--aux", aux, "--weighting", "mamt", "--sampler", "adaptive",
                        "--backbone", "tiny", "--max-steps", "6", "--batch-size", "8", "--max-length", "32",
                        "--limit", "32", "--eval-limit", "16", "--quiet", "--output", str(out))
    assert result.exit_code == 0, result.output
    evals = json.loads((out / "eval.json").read_text())
    assert set(evals["demo-entities"]["dev"]) == METRICS and set(evals["demo-paraphrase"]["dev"]) == {"f1", "accuracy"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["selection"] == f"{target}.dev.f1"


@pytest.mark.slow
def test_resume_after_a_crash_gives_the_uninterrupted_run(tmp_path, monkeypatch):
    whole_and_crashed(tmp_path, monkeypatch, **TAGGING, weighting="mamt", sampler="adaptive")
    assert RunFolder(tmp_path / "crashed").latest_checkpoint().name == "step-00000008.safetensors"
    result = Trainer.resuming(tmp_path / "crashed").prepare().train()
    assert result["summary"]["resumed_from"].endswith("step-00000008.safetensors")
    assert run_files(tmp_path / "crashed") == run_files(tmp_path / "whole")
    a, b = RunFolder(tmp_path / "crashed").best(), RunFolder(tmp_path / "whole").best()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    path = tmp_path_factory.mktemp("tagging") / "run"
    Trainer(config(path, target="demo-entities", aux=["demo-paraphrase"], epochs=1, limit=None, eval_limit=16,
                   batch_size=16, lr=3e-3, checkpoint_every=None)).train()  # learns the demo's names in one epoch
    return path


@pytest.mark.slow
def test_the_export_loads_in_plain_transformers_with_the_runs_logits(trained, tmp_path):
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from mtl.runs.restore import load_run

    out = tmp_path / "export"
    result = invoke_cli("export", str(trained), "--output", str(out))
    assert result.exit_code == 0, result.output
    assert f"AutoModelForTokenClassification.from_pretrained({str(out)!r})" in result.stdout
    model = AutoModelForTokenClassification.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert model.config.id2label[1] == "B-PER" and len(model.config.id2label) == 7
    words = [["Anna", "Smith", "visited", "New", "York", "."], ["Acme", "Corp", "hired", "Omar"]]
    batch = tokenizer(words, is_split_into_words=True, padding=True, return_tensors="pt")
    _, run_model, _ = load_run(trained)
    with torch.no_grad():
        expected = run_model("demo-entities", dict(batch))[0]
        got = model(**batch).logits
    assert got.shape == expected.shape == (2, batch["input_ids"].shape[1], 7)
    assert torch.allclose(got, expected, atol=1e-4)
    # the model card's code, run as written, prints the run model's tag of each word (its first sub-word's)
    import contextlib
    import io
    import re

    code = re.search(r"```python\n(.*?)```", (out / "README.md").read_text(encoding="utf-8"), re.S).group(1)
    assert "AutoModelForTokenClassification" in code
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), {})
    card_words = ["Anna", "visited", "Oslo", "."]
    inputs = tokenizer(card_words, is_split_into_words=True, return_tensors="pt")
    with torch.no_grad():
        logits = run_model("demo-entities", dict(inputs))[0][0]
    ids = inputs.word_ids()
    firsts = [ids.index(j) for j in range(len(card_words))]
    labels = model.config.id2label
    assert printed.getvalue().strip() == str([labels[int(logits[i].argmax())] for i in firsts])


@pytest.mark.slow
def test_predict_prints_entities_with_character_offsets(trained, tmp_path):
    from mtl.runs.restore import load_run

    lines = ['{"tokens": ["Anna", "Smith", "visited", "Wolfeschlegelsteinhausen", "."]}',
             "Omar  joined   Acme Corp in Cape Town ."]
    source = tmp_path / "input.txt"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = invoke_cli("predict", str(trained), "--input", str(source))
    assert result.exit_code == 0, result.output
    shown = [json.loads(line) for line in result.stdout.splitlines()]
    texts = ["Anna Smith visited Wolfeschlegelsteinhausen .", lines[1]]
    # each word's tag is the run model's argmax at the word's first sub-word, restated here
    _, model, tasks = load_run(trained)
    tokenizer = model.backbone.tokenizer
    labels = tasks["demo-entities"].labels
    assert len(shown) == 2
    for row, text in zip(shown, texts, strict=True):
        words = text.split()
        batch = tokenizer([words], is_split_into_words=True, return_tensors="pt")
        with torch.no_grad():
            logits = model("demo-entities", dict(batch))[0][0]
        ids, firsts = batch.word_ids(0), {}
        for position, word in enumerate(ids):
            if word is not None and word not in firsts:
                firsts[word] = position
        assert row["text"] == text and row["words"] == words
        assert row["tags"] == [labels[int(logits[firsts[j]].argmax())] for j in range(len(words))]
        for entity in row["entities"]:
            assert text[entity["start"]: entity["end"]] == entity["text"]
            assert entity["text"].split() == entity["words"]
            start = len(text[: entity["start"]].split())
            kinds = {tag[2:] for tag in row["tags"][start: start + len(entity["words"])]}
            assert kinds == {entity["type"]}
    # the model (F1 about 0.6 after its epoch) finds Omar, and entities past the runs of spaces, whose offsets (checked
    # above) are into the line as given
    found = {(e["type"], e["start"], e["end"]) for e in shown[1]["entities"]}
    assert ("PER", 0, 4) in found and any(start >= 15 for _, start, _ in found), shown[1]


@pytest.mark.slow
def test_a_bad_input_line_is_a_one_line_error_naming_it(trained, tmp_path):
    source = tmp_path / "input.jsonl"
    source.write_text('{"tokens": ["Anna"]}\n{"tokens": 5}\n', encoding="utf-8")
    result = invoke_cli("predict", str(trained), "--input", str(source))
    assert_one_line_error(result, f"{source}:2", "'tokens' must be a list of words")
    source.write_text('Anna went home\n{"tokens": ["Anna"\n', encoding="utf-8")
    assert_one_line_error(invoke_cli("predict", str(trained), "--input", str(source)), f"{source}:2", "invalid JSON")


@pytest.mark.slow
def test_mtl_eval_gives_the_runs_own_metrics(trained):
    result = invoke_cli("eval", str(trained), "--json")
    assert result.exit_code == 0, result.output
    stored = json.loads((trained / "eval.json").read_text())["demo-entities"]["dev"]
    assert json.loads(result.stdout)["metrics"] == pytest.approx(stored)


def conll_file(path, sentences: list[list[tuple[str, str]]]):
    lines = ["-DOCSTART- -X- -X- O", ""]
    for sentence in sentences:
        lines += [f"{word} NNP B-NP {tag}" for word, tag in sentence] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


SENTENCES = [[("EU", "B-ORG"), ("rejects", "O"), ("German", "B-MISC"), ("call", "O"), (".", "O")],
             [("Peter", "B-PER"), ("Blackburn", "I-PER")],
             [("BRUSSELS", "B-LOC"), ("1996-08-22", "O")],
             [("The", "O"), ("European", "B-ORG"), ("Commission", "I-ORG"), ("said", "O"), ("on", "O"),
              ("Thursday", "O"), ("it", "O"), ("disagreed", "O"), ("with", "O"), ("German", "B-MISC"),
              ("advice", "O"), (".", "O")]]


@pytest.mark.slow
def test_conll2003_trains_on_conll_files_given_with_data(tmp_path):
    train = conll_file(tmp_path / "eng.train", SENTENCES * 4)
    dev = conll_file(tmp_path / "eng.testa", SENTENCES)
    out = tmp_path / "run"
    result = invoke_cli("run", "--target", "conll2003", "--data", f"conll2003.train={train}", "--data",
                        f"conll2003.dev={dev}", "--backbone", "tiny", "--max-steps", "2", "--batch-size", "8",
                        "--max-length", "32", "--quiet", "--output", str(out))
    assert result.exit_code == 0, result.output
    assert set(json.loads((out / "eval.json").read_text())["conll2003"]["dev"]) == METRICS
    stored = run_files_module.load_predictions(out / "predictions.safetensors")["splits"]["conll2003.dev"]
    assert [int((row != IGNORE).sum()) for row in stored["labels"]] == [len(s) for s in SENTENCES]
    labels = mtl.create("task", "conll2003").labels
    assert [[labels[i] for i in row if i != IGNORE] for row in stored["labels"].tolist()] == [
        [tag for _, tag in s] for s in SENTENCES]


def test_a_bad_conll_file_stops_the_run_before_anything_is_written(tmp_path):
    bad = [[("Peter", "B-PER"), ("Blackburn", "I-PERSON")]]
    train = conll_file(tmp_path / "eng.train", SENTENCES + bad)
    out = tmp_path / "run"
    result = invoke_cli("run", "--target", "conll2003", "--data", f"conll2003.train={train}", "--backbone", "tiny",
                        "--max-steps", "2", "--quiet", "--output", str(out))
    # lines: 1-2 -DOCSTART- and a blank, then 5, 2, 2 and 12 words each followed by a blank (3-27), Peter 28
    assert_one_line_error(result, f"{train}:29", "'I-PERSON'", "'Blackburn'")
    assert not out.exists()
