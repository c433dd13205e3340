"""Multiple choice, ranking and multi-label classification train with every kind of strategy (a classification
auxiliary task beside them), resume exactly after a crash, export to the transformers class a user loads with the
run's logits, and `mtl predict` shows what fits the type."""

from __future__ import annotations

import json

import pytest
import torch
from helpers.runs import Crash, crash_at, run_files

from mtl.runs.config import RunConfig
from mtl.runs.folder import RunFolder
from mtl.training.trainer import Trainer


def invoke_cli(*args, input=None):
    from typer.testing import CliRunner

    from mtl.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], input=input)


TARGETS = ["demo-choice", "demo-ranking", "demo-topics"]
STRATEGIES = [("uniform", "proportional"), ("mamt", "adaptive"), ("siwlm", "sequential"), ("pcgrad", "all")]


def config(path, target: str, **overrides) -> RunConfig:
    values = dict(target=target, aux=["demo-paraphrase"], backbone="tiny", batch_size=8, max_length=32, lr=1e-3,
                  log_every=1, limit=32, eval_limit=24, output=str(path), seed=5)
    values.update(overrides)
    return RunConfig(**values)


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("weighting,sampler", STRATEGIES)
def test_each_pooled_type_trains_with_each_kind_of_strategy(tmp_path, target, weighting, sampler):
    result = Trainer(config(tmp_path / "run", target, weighting=weighting, sampler=sampler, max_steps=4)).train()
    evals = json.loads((tmp_path / "run" / "eval.json").read_text())
    metrics = evals[target]["dev"]
    assert metrics and all(0.0 <= v <= 1.0 for v in metrics.values()), metrics
    assert set(evals["demo-paraphrase"]["dev"]) == {"f1", "accuracy"}
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r[f"loss.{target}"] for r in records if f"loss.{target}" in r]
    assert losses and all(torch.isfinite(torch.tensor(losses))), records[:3]
    assert result["summary"]["steps_done"] == 4 and len([r for r in records if "lr" in r]) == 4


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS)
def test_a_pooled_type_resumes_after_a_crash_as_the_uninterrupted_run(tmp_path, monkeypatch, target):
    options = dict(weighting="mamt", sampler="adaptive", max_steps=14, checkpoint_every=4)
    Trainer(config(tmp_path / "whole", target, **options)).train()  # past an epoch: 4 + 4 steps (ranking: 1 + 4)
    crash_at(monkeypatch, 10)
    with pytest.raises(Crash):
        Trainer(config(tmp_path / "crashed", target, **options)).train()
    monkeypatch.undo()
    checkpoint = RunFolder(tmp_path / "crashed").latest_checkpoint().name  # step 8 (ranking: its epoch end, 10)
    assert checkpoint in ("step-00000008.safetensors", "step-00000010.safetensors")
    result = Trainer.resuming(tmp_path / "crashed").prepare().train()
    assert result["summary"]["resumed_from"].endswith(checkpoint)
    assert run_files(tmp_path / "crashed") == run_files(tmp_path / "whole")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """A short run of each pooled type as the target (uniform weighting), and its trainer."""
    out = {}
    for target in TARGETS:
        path = tmp_path_factory.mktemp(target)
        trainer = Trainer(config(path / "run", target, max_steps=6))
        trainer.train()
        out[target] = (path / "run", trainer)
    return out


def trained_logits(trainer, target: str, batch) -> torch.Tensor:
    model = trainer.model.cpu().eval()
    with torch.no_grad():
        return model(target, batch)[0]


def dev_batch(trainer, target: str, n: int = 5):
    data = trainer.eval_data[(target, "dev")]
    return {k: v for k, v in data.collate(list(range(n))).items() if k != "labels"}


@pytest.mark.slow
def test_multiple_choice_exports_to_auto_model_for_multiple_choice(trained, tmp_path):
    from transformers import AutoModelForMultipleChoice

    run, trainer = trained["demo-choice"]
    result = invoke_cli("export", str(run), "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "out" / "mtl_export.json").read_text())
    assert manifest["type"] == "multiple-choice" and manifest["loadable_with_transformers"]
    exported = AutoModelForMultipleChoice.from_pretrained(str(tmp_path / "out")).eval()
    batch = dev_batch(trainer, "demo-choice")
    assert batch["input_ids"].shape[1] == 4
    with torch.no_grad():
        got = exported(**batch).logits  # plain transformers on the [B, k, L] batch
    assert torch.allclose(got, trained_logits(trainer, "demo-choice", batch), atol=1e-5)


@pytest.mark.slow
def test_ranking_exports_a_single_logit_classifier_that_scores_each_pair(trained, tmp_path):
    from transformers import AutoModelForSequenceClassification

    run, trainer = trained["demo-ranking"]
    result = invoke_cli("export", str(run), "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    exported = AutoModelForSequenceClassification.from_pretrained(str(tmp_path / "out")).eval()
    assert exported.config.num_labels == 1
    batch = dev_batch(trainer, "demo-ranking")
    expected = trained_logits(trainer, "demo-ranking", batch)
    mask = batch["choice_mask"].bool()
    with torch.no_grad():  # each real (query, candidate) pair on its own, [N, L]
        pairs = {k: batch[k][mask] for k in ("input_ids", "attention_mask", "token_type_ids")}
        got = exported(**pairs).logits.view(-1)
    assert torch.allclose(got, expected[mask], atol=1e-5)


@pytest.mark.slow
def test_multi_label_exports_a_multi_label_sequence_classifier(trained, tmp_path):
    from transformers import AutoModelForSequenceClassification

    run, trainer = trained["demo-topics"]
    result = invoke_cli("export", str(run), "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    exported = AutoModelForSequenceClassification.from_pretrained(str(tmp_path / "out")).eval()
    assert exported.config.problem_type == "multi_label_classification"
    assert list(exported.config.id2label.values()) == ["food", "sports", "music", "travel", "weather"]
    batch = dev_batch(trainer, "demo-topics")
    with torch.no_grad():
        got = exported(**batch).logits
    assert torch.allclose(got, trained_logits(trainer, "demo-topics", batch), atol=1e-5)


@pytest.mark.slow
def test_mtl_predict_shows_the_chosen_ending_ranked_candidates_and_label_sets(trained, tmp_path):
    run, _ = trained["demo-choice"]
    row = {"context": "The nurse was cold.", "prefix": "Then the nurse", "ending0": "ate a sandwich.",
           "ending1": "put on a warm coat.", "ending2": "took a long nap.", "ending3": "checked the map."}
    result = invoke_cli("predict", str(run), input=json.dumps(row) + "\n")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["ending"] == [row[f"ending{i}"] for i in range(4)][shown["choice"]]
    assert len(shown["scores"]) == 4 and sum(shown["scores"]) == pytest.approx(1.0, abs=1e-5)
    exported = tmp_path / "choice"
    assert invoke_cli("export", str(run), "-o", str(exported)).exit_code == 0
    again = json.loads(invoke_cli("predict", str(exported), input=json.dumps(row) + "\n").stdout)
    assert again["choice"] == shown["choice"] and again["scores"] == pytest.approx(shown["scores"], abs=1e-5)

    run, _ = trained["demo-ranking"]
    lines = "".join(f"Where did the cook leave the keys?\t{c}\n" for c in
                    ("The cook left the keys in the car.", "The man left the keys at the office.",
                     "The cook left the hat by the door."))
    result = invoke_cli("predict", str(run), input=lines)
    assert result.exit_code == 0, result.output
    ranked = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(ranked) == 1 and ranked[0]["query"] == "Where did the cook leave the keys?"
    assert [c["rank"] for c in ranked[0]["ranking"]] == [1, 2, 3]
    scores = [c["score"] for c in ranked[0]["ranking"]]
    assert scores == sorted(scores, reverse=True)

    run, _ = trained["demo-topics"]
    result = invoke_cli("predict", str(run), input=json.dumps({"text": "It rained all afternoon."}) + "\n")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert set(shown["probabilities"]) == {"food", "sports", "music", "travel", "weather"}
    assert shown["labels"] == [k for k, p in shown["probabilities"].items() if p > 0.5]


@pytest.mark.slow
def test_mtl_eval_of_each_pooled_run_reproduces_its_eval_json(trained):
    for target, (run, _) in trained.items():
        result = invoke_cli("eval", str(run), "--json")
        assert result.exit_code == 0, result.output
        expected = json.loads((run / "eval.json").read_text())[target]["dev"]
        assert json.loads(result.stdout)["metrics"] == pytest.approx(expected), target
