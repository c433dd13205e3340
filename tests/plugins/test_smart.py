"""The regularizer kind and SMART (Jiang et al., ACL 2020): the adversarial ascent, the noise-only term, the
symmetric KL, gradients into the backbone, the momentum copy, training and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import TINY_RUN, assert_one_line_error, invoke_cli, run_mtl
from scipy.stats import entropy

import mtl
from mtl.contract.weighting import Step
from mtl.errors import OptionError
from mtl.plugins.regularizers.smart import Smart, divergence, symmetric_kl
from mtl.runs.config import RunConfig
from mtl.training.trainer import Trainer

DEMO = dict(target="demo-paraphrase", aux=["demo-similarity"])


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A tiny demo-suite trainer, prepared (model and data built, nothing trained), in float64 and eval mode so
    that the model is a fixed deterministic function and divergences of 1e-6 are above rounding."""
    config = RunConfig(**DEMO, backbone="tiny", batch_size=8, max_length=128, limit=16, eval_limit=8,
                       output=str(tmp_path_factory.mktemp("smart") / "run"))
    trainer = Trainer(config).prepare()
    trainer.model.double().eval()
    return trainer


def batch_of(trainer, task: str, n: int = 8):
    return trainer.train_data[task].collate(list(range(n)))


def options(**overrides):
    values = dict(epsilon=0.05, sigma=0.01, step_size=0.05, steps=1, proximal=False)
    values.update(overrides)
    return values


def direct_outputs(trainer, task, batch, delta):
    """The model's outputs on word embeddings + δ, computed through the encoder's ``inputs_embeds`` (not the hook)."""
    encoder = trainer.model.backbone.encoder
    embeds = encoder.get_input_embeddings()(batch["input_ids"]) + delta
    out = encoder(inputs_embeds=embeds, attention_mask=batch["attention_mask"],
                  token_type_ids=batch.get("token_type_ids"), return_dict=True)
    return trainer.model.heads[task](out.pooler_output)


# ---------------------------------------------------------------------------------------------- the terms
def test_symmetric_kl_equals_scipy():
    p, q = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    pp, qq = torch.softmax(p, -1).numpy(), torch.softmax(q, -1).numpy()
    expected = [entropy(a, b) + entropy(b, a) for a, b in zip(pp, qq, strict=True)]
    assert np.allclose(symmetric_kl(p, q).numpy(), expected, atol=1e-6)
    assert torch.allclose(symmetric_kl(p, p), torch.zeros(5, dtype=torch.float64))
    # regression: the squared error of the outputs
    similarity = mtl.create("task", "demo-similarity")
    assert torch.allclose(divergence(torch.tensor([[1.0], [2.0]]), torch.tensor([[0.5], [4.0]]), similarity),
                          torch.tensor([0.25, 4.0]))


def test_the_hook_perturbs_exactly_the_word_embeddings(prepared):
    task, batch = "demo-paraphrase", batch_of(prepared, "demo-paraphrase")
    smart = Smart(**options())
    smart.setup(prepared.run)
    delta = smart.noise(batch).double() * 100
    with torch.no_grad():
        assert torch.allclose(prepared.run.forward(task, batch, embedding_delta=delta),
                              direct_outputs(prepared, task, batch, delta), atol=1e-10)
        assert not torch.allclose(prepared.run.forward(task, batch), direct_outputs(prepared, task, batch, delta))


def test_the_ascent_is_at_least_as_harmful_as_its_starting_noise(prepared):
    for task in ("demo-paraphrase", "demo-similarity"):  # classification and regression
        batch = batch_of(prepared, task)
        smart = Smart(**options(steps=3))
        smart.setup(prepared.run)
        with torch.no_grad():
            clean = prepared.run.forward(task, batch)
        start = smart.noise(batch).double()
        found = smart.ascend(task, batch, clean, start)
        with torch.no_grad():
            harm_start = divergence(direct_outputs(prepared, task, batch, start), clean, prepared.tasks[task])
            harm_found = divergence(direct_outputs(prepared, task, batch, found), clean, prepared.tasks[task])
        assert bool((harm_found >= harm_start).all()) and float(harm_found.sum()) > 2 * float(harm_start.sum())
        assert float(found.abs().max()) <= 0.05 + 1e-12  # inside the ε ball
        pad = batch["attention_mask"] == 0
        assert bool(pad.any()) and float(found[pad].abs().max()) == 0.0  # pad positions unperturbed


def test_zero_steps_is_the_noise_only_term(prepared):
    task, batch = "demo-paraphrase", batch_of(prepared, "demo-paraphrase")
    smart = Smart(**options(steps=0, sigma=0.02))
    smart.setup(prepared.run)
    state = prepared.run.rng.get_state()
    with torch.no_grad():
        clean = prepared.run.forward(task, batch)
        term = smart.adversarial_term(task, batch, clean)
    generator = torch.Generator().set_state(state)  # the same draw, made here by hand
    input_ids = batch["input_ids"]
    noise = torch.randn(*input_ids.shape, prepared.run.embedding_size, generator=generator) * 0.02
    noise = (noise * batch["attention_mask"][..., None]).double()
    with torch.no_grad():
        expected = symmetric_kl(direct_outputs(prepared, task, batch, noise), clean)
    assert torch.allclose(term, expected, atol=1e-12) and float(term.sum()) > 0


def test_the_term_sends_gradients_into_the_backbone(prepared):
    task, batch = "demo-paraphrase", batch_of(prepared, "demo-paraphrase")
    smart = Smart(**options())
    smart.setup(prepared.run)
    prepared.model.zero_grad(set_to_none=True)
    logits = prepared.run.forward(task, batch)
    term = smart.loss(Step(losses={}, features={}, target=task, index=0, epoch=0, progress=0.0,
                           batches={task: batch}, logits={task: logits}))
    term.backward()
    encoder = prepared.model.backbone.encoder
    layer = encoder.encoder.layer[0].attention.self.query.weight
    assert layer.grad is not None and float(layer.grad.abs().sum()) > 0
    assert float(encoder.get_input_embeddings().weight.grad.abs().sum()) > 0
    assert set(smart.log()) == {"smart.adversarial"}
    prepared.model.zero_grad(set_to_none=True)


def test_the_momentum_copy_follows_beta(prepared):
    model = prepared.model
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    smart = Smart(adversarial=False, proximal=True, beta=0.75)
    smart.setup(prepared.run)
    start = {k: v.detach().clone() for k, v in model.named_parameters()}
    try:
        task, batch = "demo-paraphrase", batch_of(prepared, "demo-paraphrase")
        with torch.no_grad():  # θ̃ = θ and no dropout: the proximal term is zero
            assert float(smart.proximal_term(task, batch, prepared.run.forward(task, batch)).abs().max()) < 1e-12
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        smart.after_step()
        copy = dict(smart.momentum.named_parameters())
        for name, p in model.named_parameters():
            assert torch.allclose(copy[name], 0.25 * p + 0.75 * start[name], atol=1e-12), name
        with torch.no_grad():
            assert float(smart.proximal_term(task, batch, prepared.run.forward(task, batch)).sum()) > 0
        assert not any(p.requires_grad for p in smart.momentum.parameters())
        # the copy is the regularizer's state: saved and loaded exactly
        other = Smart(adversarial=False, proximal=True)
        other.setup(prepared.run)
        other.load_state_dict(smart.state_dict())
        pairs = zip(other.momentum.parameters(), smart.momentum.parameters(), strict=True)
        assert all(torch.equal(a, b) for a, b in pairs)
    finally:
        model.load_state_dict(saved)


# ---------------------------------------------------------------------------------------------- through mtl run
def test_smart_trains_through_mtl_run_and_logs_both_terms(tmp_path):
    out = tmp_path / "run"
    result = invoke_cli("run", *TINY_RUN, "--regularizer", "smart", "--set", "smart.steps=2", "--log-every", "1",
                        "-o", str(out))
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if '"tasks"' in line]
    assert all(r["smart.adversarial"] > 0 and r["smart.proximal"] >= 0 for r in records)
    config = json.loads((out / "config.json").read_text())
    assert config["regularizer"] == "smart" and config["options"] == {"smart": {"steps": "2"}}
    assert config["plugins"]["regularizer.smart"]["package"] == "mtl"


@pytest.mark.slow
def test_a_regularizer_changes_the_training(tmp_path):
    """Same seed, with and without SMART: the trained target heads differ (the term reaches the gradients)."""
    from mtl.runs.folder import RunFolder

    heads = {}
    for name, extra in (("plain", []), ("smart", ["--regularizer", "smart", "--set", "smart.weight=100"])):
        result = invoke_cli("run", *TINY_RUN, *extra, "-o", str(tmp_path / name))
        assert result.exit_code == 0, result.output
        heads[name] = RunFolder(tmp_path / name).best()
    key = next(k for k in heads["plain"] if k.startswith("heads.") and k.endswith("weight"))
    assert not torch.equal(heads["plain"][key], heads["smart"][key])


def test_regularizer_errors_are_one_line(tmp_path):
    result = invoke_cli("run", *TINY_RUN, "--regularizer", "smrt", "-o", str(tmp_path / "a"))
    assert_one_line_error(result, "smrt", "smart")
    result = invoke_cli("run", *TINY_RUN, "--regularizer", "smart", "--set", "smart.steps=-1",
                        "-o", str(tmp_path / "b"))
    assert_one_line_error(result, "smart", "steps must be >= 0")
    result = invoke_cli("run", *TINY_RUN, "--regularizer", "smart", "--set", "smart.adversarial=false",
                        "--set", "smart.proximal=false", "-o", str(tmp_path / "c"))
    assert_one_line_error(result, "both off")
    result = invoke_cli("run", *TINY_RUN, "--set", "smart.steps=2", "-o", str(tmp_path / "d"))
    assert_one_line_error(result, "smart", "not a plugin of this run")
    assert not any((tmp_path / n).exists() for n in "abcd")


def test_an_encoder_without_word_embeddings_is_refused_at_setup():
    from mtl.model.perturbation import word_embeddings

    with pytest.raises(ValueError, match="word-embedding table"):
        word_embeddings(torch.nn.Linear(2, 2))


@pytest.mark.slow
def test_a_third_party_regularizer_trains(example_plugin_path, tmp_path):
    listed = run_mtl("plugins", "--json", "--kind", "regularizer", env={"PYTHONPATH": str(example_plugin_path)})
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)["plugins"]
    assert {(r["name"], r["package"]) for r in rows} == {("smart", "mtl"), ("head-l2", "mtl-example-plugin")}
    out = tmp_path / "run"
    result = run_mtl("run", *TINY_RUN, "--regularizer", "head-l2", "--set", "head-l2.strength=0.5", "--log-every",
                     "1", "-o", str(out), env={"PYTHONPATH": str(example_plugin_path)})
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if '"tasks"' in line]
    assert all(r["head-l2.norm"] > 0 for r in records)


def test_the_regularizer_kind_is_in_the_public_api():
    assert mtl.Regularizer is not None and "smart" in mtl.available("regularizer")
    with pytest.raises(OptionError, match="regularizer 'smart'.*beta must be in"):
        mtl.create("regularizer", "smart", beta=2.0)
