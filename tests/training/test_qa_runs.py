"""Extractive QA (SQuAD-style, task ``demo-qa``) trained with a classification auxiliary task: every kind of
weighting, an exact resume after a crash, the export loaded by plain transformers' AutoModelForQuestionAnswering
with the run's logits, and ``mtl predict`` printing answers."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch
from conftest import invoke_cli
from helpers.runs import config, run_files, whole_and_crashed

from mtl.runs.folder import RunFolder
from mtl.training.trainer import Trainer

QA = dict(target="demo-qa", aux=["demo-paraphrase"], max_length=64, limit=48, eval_limit=24)
STRATEGIES = {"uniform": dict(weighting="uniform", sampler="proportional"),
              "mamt": dict(weighting="mamt", sampler="adaptive", options={"mamt": {"memory": 2}}),
              "siwlm": dict(weighting="siwlm", sampler="sequential"),
              "pcgrad": dict(weighting="pcgrad", sampler="all")}
QUESTIONS = [
    {"question": "Where does Emma live?",
     "context": "Emma works as a pilot. Emma lives in Oslo. The favourite colour of Emma is green."},
    {"question": "Which instrument can Tom play?",
     "context": "The weather there is often mild. Tom lives in Rome. Tom has learned to play the cello. With the "
                "family Tom speaks Greek. On weekends Tom plays golf with friends. At home Tom keeps a pet cat. "
                "For dinner Tom likes to eat rice. Tom was born in June. Friends say that Tom is very kind."},
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """demo-qa with demo-paraphrase, 8 steps of each strategy (tiny backbone): name -> (run folder, trainer)."""
    root = tmp_path_factory.mktemp("qa")
    done = {}
    for name, options in STRATEGIES.items():
        trainer = Trainer(config(root / name, **QA, **options, max_steps=8, epochs=1))
        trainer.train()
        trainer.model.eval()
        done[name] = (root / name, trainer)
    return done


@pytest.mark.slow
@pytest.mark.parametrize("name", list(STRATEGIES))
def test_qa_trains_with_every_kind_of_weighting_beside_a_classification_task(runs, name):
    run, trainer = runs[name]
    evaluation = json.loads((run / "eval.json").read_text())
    qa = evaluation["demo-qa"]["dev"]
    assert list(qa) == ["f1", "exact_match"] and 0 <= qa["exact_match"] <= qa["f1"] <= 1
    assert set(evaluation["demo-paraphrase"]["dev"]) == {"f1", "accuracy"}
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss.demo-qa"] for r in records if r.get("loss.demo-qa") is not None]
    assert losses and all(math.isfinite(x) for x in losses)
    # the stored per-example scores (em, f1) of the best evaluation: one row per dev question
    stored = RunFolder(run).predictions()["splits"]["demo-qa.dev"]
    assert stored["predictions"].shape == (24, 2) and stored["labels"][:, 0].tolist() == list(range(24))
    best = json.loads((run / "summary.json").read_text())["selection_value"]  # the target's f1 at the best step
    assert stored["predictions"][:, 1].mean().item() == pytest.approx(best)


@pytest.mark.slow
def test_a_qa_run_resumes_exactly_after_a_crash(tmp_path, monkeypatch):
    options = dict(QA, **STRATEGIES["mamt"])
    whole_and_crashed(tmp_path, monkeypatch, **options)
    assert RunFolder(tmp_path / "crashed").latest_checkpoint().name == "step-00000008.safetensors"
    result = Trainer.resuming(tmp_path / "crashed").prepare().train()
    assert result["summary"]["resumed_from"].endswith("step-00000008.safetensors")
    assert run_files(tmp_path / "crashed") == run_files(tmp_path / "whole")
    a, b = RunFolder(tmp_path / "crashed").best(), RunFolder(tmp_path / "whole").best()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def windows_batch(trainer):
    """The windows of QUESTIONS as the run makes them (the second needs two), padded as one batch."""
    from mtl.data.batching import encode
    from mtl.data.records import from_records

    task = trainer.tasks["demo-qa"]
    examples = from_records(task, "test", [(f"q{i}", q) for i, q in enumerate(QUESTIONS)], "questions", None)
    data = encode(examples, trainer.model.backbone.tokenizer, 64, task)
    return data, {k: v for k, v in data.collate(list(range(len(data)))).items() if k != "labels"}


PLAIN = r"""
import json, sys
import torch
from transformers import AutoModelForQuestionAnswering
folder, batch = sys.argv[1], {k: torch.tensor(v) for k, v in json.loads(sys.argv[2]).items()}
model = AutoModelForQuestionAnswering.from_pretrained(folder).eval()
with torch.no_grad():
    out = model(**batch)
print(json.dumps({"start": out.start_logits.tolist(), "end": out.end_logits.tolist(), "class": type(model).__name__,
                  "mtl": sorted(m for m in sys.modules if m == "mtl" or m.startswith("mtl."))}))
"""


@pytest.mark.slow
def test_the_export_loads_in_plain_transformers_with_the_runs_start_and_end_logits(runs, tmp_path):
    run, trainer = runs["mamt"]  # MAMT's memory and the auxiliary head are plugged out
    result = invoke_cli("export", str(run), "--output", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "out" / "mtl_export.json").read_text())
    assert manifest["task"] == "demo-qa" and manifest["num_labels"] == 2 and manifest["type"] == "extractive-qa"
    assert manifest["labels"] is None and manifest["problem_type"] is None
    assert "AutoModelForQuestionAnswering.from_pretrained" in result.stdout and "(extractive-qa, 2 outputs)" in \
        result.stdout
    data, batch = windows_batch(trainer)
    assert len(data) == 3  # one window, then two
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    done = subprocess.run([sys.executable, "-c", PLAIN, str(tmp_path / "out"),
                           json.dumps({k: v.tolist() for k, v in batch.items()})],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    plain = json.loads(done.stdout.splitlines()[-1])
    assert plain["class"] == "BertForQuestionAnswering" and plain["mtl"] == []
    with torch.no_grad():
        logits = trainer.model("demo-qa", batch)[0]
    mask = batch["attention_mask"].bool()
    for column, key in ((0, "start"), (1, "end")):
        got = torch.tensor(plain[key])
        assert got.shape == logits.shape[:2]
        assert torch.allclose(got[mask], logits[..., column][mask], atol=1e-5)


@pytest.mark.slow
def test_mtl_predict_prints_the_answer_with_its_offsets_and_score(runs, tmp_path):
    run, trainer = runs["uniform"]
    lines = tmp_path / "questions.jsonl"
    lines.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS) + "\n")
    result = invoke_cli("predict", str(run), "--input", str(lines))
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 2
    data, batch = windows_batch(trainer)
    with torch.no_grad():
        logits = trainer.model("demo-qa", batch)[0]
    kind = trainer.tasks["demo-qa"].kind
    expected = kind.answers_of(trainer.tasks["demo-qa"], data, list(logits))
    for row, question, span in zip(rows, QUESTIONS, expected, strict=True):
        assert set(row) == {"answer", "start", "end", "score"}
        assert row["answer"] == question["context"][row["start"]:row["end"]] == span["answer"]
        assert 0 < row["score"] <= 1 and row["score"] == pytest.approx(span["score"], abs=1e-5)
    # mtl eval recomputes the run's dev scores (the only evaluation of these 8 steps is the best one)
    evaluated = invoke_cli("eval", str(run), "--json")
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout)["metrics"] == json.loads((run / "eval.json").read_text())["demo-qa"]["dev"]
    # the export answers the same
    assert invoke_cli("export", str(run), "--output", str(tmp_path / "out")).exit_code == 0
    again = invoke_cli("predict", str(tmp_path / "out"), "--input", str(lines))
    assert again.exit_code == 0, again.output
    for a, b in zip(rows, [json.loads(line) for line in again.stdout.splitlines()], strict=True):
        assert (a["answer"], a["start"], a["end"]) == (b["answer"], b["start"], b["end"])
        assert a["score"] == pytest.approx(b["score"], abs=1e-5)


@pytest.mark.slow
def test_an_answer_not_in_its_context_stops_the_run_before_anything_is_written(tmp_path):
    bad = tmp_path / "train.jsonl"
    bad.write_text(json.dumps({"question": "Where?", "context": "Anna lives in Oslo.",
                               "answers": {"text": ["Oslo"], "answer_start": [3]}}) + "\n")
    out = tmp_path / "run"
    result = invoke_cli("run", "--target", "demo-qa", "--aux", "demo-paraphrase", "--data",
                        f"demo-qa.train={bad}", "--backbone", "tiny", "--max-steps", "2", "--output", str(out),
                        "--quiet")
    from conftest import assert_one_line_error

    assert_one_line_error(result, f"{bad}:1", "'Oslo' is not at answer_start 3")
    assert not out.exists() or not any(out.iterdir())
