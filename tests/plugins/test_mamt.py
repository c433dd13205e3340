"""The MAMT weighting and the adaptive sampler (Yan et al., IEEE TII 2022) inside the trainer."""

from __future__ import annotations

import json
import types

import pytest
import torch
from helpers.runs import DEMO

import mtl
from mtl import Step, memory
from mtl.errors import MtlError
from mtl.runs.config import RunConfig
from mtl.runs.folder import load_state
from mtl.training.trainer import Trainer


def mamt_config(tmp_path, **overrides) -> RunConfig:
    values = dict(DEMO, backbone="tiny", weighting="mamt", sampler="adaptive", batch_size=8, max_length=32,
                  lr=1e-3, log_every=1, output=str(tmp_path / "run"), seed=0, max_steps=12)
    values.update(overrides)
    return RunConfig(**values)


def test_memory_is_filled_with_target_features_at_setup(tmp_path):
    trainer = Trainer(mamt_config(tmp_path, options={"mamt": {"memory": 3}})).prepare()
    bank = trainer.weighting.bank
    assert bank.shape == (3 * 8, trainer.model.hidden_size) and bank.dtype == torch.float32
    # the rows are features of distinct target examples under the initial backbone
    assert torch.unique(bank, dim=0).shape[0] == bank.shape[0]
    again = Trainer(mamt_config(tmp_path, options={"mamt": {"memory": 3}})).prepare()
    assert torch.equal(bank, again.weighting.bank)


def _step(trainer, task, losses, z):
    return Step(losses={task: losses}, features={task: z}, target=trainer.config.target, index=0, epoch=0,
                progress=0.0)


def test_aux_weights_are_eq5_detached_and_clamped(tmp_path):
    trainer = Trainer(mamt_config(tmp_path, options={"mamt": {"phi": 0.5}})).prepare()
    w = trainer.weighting
    bank = w.bank.clone()
    z = torch.cat([bank[:3], -bank[3:5], torch.randn(3, bank.shape[1])])  # similar, opposite, random
    losses = torch.rand(len(z), requires_grad=True)
    step = _step(trainer, "demo-sentiment", losses, z)
    loss = w.loss(step)
    loss.backward()
    tau = losses.grad * len(z)  # d(mean(τ ℓ))/dℓ_i = τ_i / B: τ entered as a constant
    expected = memory.similarity(z, bank).mean(1).clamp(0, 0.5)
    assert torch.allclose(tau, expected, atol=1e-5)
    assert (tau[:3] == 0.5).all() and (tau[3:5] == 0).all()  # clamped at φ above and at 0 below
    assert torch.equal(w.bank, bank)  # auxiliary batches never touch the memory
    log = w.log()
    assert log["mamt.tau"] == pytest.approx(float(expected.mean()), abs=1e-5)
    assert step.weights["demo-sentiment"] == pytest.approx(float(expected.mean()), abs=1e-5)  # weight.<task>


@pytest.mark.parametrize("options", [{"k": 2}, {"metric": "maxnorm"}, {"k": 5, "metric": "maxnorm"}])
def test_topk_and_maxnorm_weights(tmp_path, options):
    trainer = Trainer(mamt_config(tmp_path, options={"mamt": options})).prepare()
    w = trainer.weighting
    z = torch.randn(6, w.bank.shape[1])
    losses = torch.ones(6, requires_grad=True)
    w.loss(_step(trainer, "demo-similarity", losses, z)).backward()
    metric = options.get("metric", "cosine")
    k = options.get("k", w.bank.shape[0])
    sims = memory.similarity(z, w.bank, metric)
    expected = sims.topk(k, dim=1).values.mean(1).clamp(0, 1.0)
    assert torch.allclose(losses.grad * 6, expected, atol=1e-5)


def test_target_batch_replaces_slots_sequentially_with_weight_one(tmp_path):
    trainer = Trainer(mamt_config(tmp_path, options={"mamt": {"psi": 1.0}})).prepare()
    w = trainer.weighting
    before = w.bank.clone()
    z = torch.randn(4, before.shape[1])
    losses = torch.rand(4, requires_grad=True)
    w.loss(_step(trainer, "demo-paraphrase", losses, z)).backward()
    assert torch.allclose(losses.grad * 4, torch.ones(4))
    changed = (w.bank != before).any(dim=1).nonzero().flatten()
    assert 1 <= len(changed) <= 4  # a later instance may take the slot an earlier one just wrote
    reference = before.clone()
    memory.replace_torch(reference, z, torch.zeros(4), torch.zeros(4, dtype=torch.long), 1.0, "cosine")
    assert torch.equal(w.bank, reference)
    assert w.counts == {"argmin": 4, "random": 0}
    # the running mean used for O(B·D) weights stays equal to the memory's
    assert torch.allclose(w.tracker.mean, memory.normalized_mean(w.bank), atol=1e-9)


@pytest.mark.slow
def test_same_seed_same_memory_and_weights(tmp_path):
    a = Trainer(mamt_config(tmp_path / "a")).prepare()
    ra = a.train()
    b = Trainer(mamt_config(tmp_path / "b")).prepare()
    rb = b.train()
    assert torch.equal(a.weighting.bank, b.weighting.bank)
    assert ra["eval"] == rb["eval"]
    la = (tmp_path / "a" / "run" / "metrics.jsonl").read_text()
    assert la == (tmp_path / "b" / "run" / "metrics.jsonl").read_text()
    records = [json.loads(line) for line in la.splitlines() if '"tasks"' in line]
    assert any("mamt.similarity" in r for r in records) and any("mamt.replaced" in r for r in records)
    final = records[-1]
    assert final["mamt.replacements_argmin"] + final["mamt.replacements_random"] == 8 * sum(
        r["tasks"] == ["demo-paraphrase"] for r in records)


def test_memory_is_saved_beside_the_model_and_plugged_out_of_it(tmp_path):
    trainer = Trainer(mamt_config(tmp_path / "m")).prepare()
    trainer.train()
    saved = load_state(tmp_path / "m" / "run" / "checkpoint" / "weighting.safetensors")
    assert saved["bank"].shape == trainer.weighting.bank.shape
    assert {"argmin", "random"} <= set(saved)
    uniform = Trainer(mamt_config(tmp_path / "u", weighting="uniform")).prepare()
    # the model trained with MAMT has exactly the parameters of one trained without its memory
    assert trainer.model.state_dict().keys() == uniform.model.state_dict().keys()
    from mtl.runs.folder import RunFolder

    best = RunFolder(tmp_path / "m" / "run").best()
    assert best.keys() == uniform.model.state_dict().keys()
    # and the weighting state round-trips
    fresh = mtl.create("weighting", "mamt")
    fresh.load_state_dict(saved)
    assert torch.equal(fresh.bank, saved["bank"])


def test_mamt_needs_a_target_and_a_k_within_the_memory(tmp_path):
    w = mtl.create("weighting", "mamt")
    with pytest.raises(MtlError, match="needs a --target"):
        w.setup(types.SimpleNamespace(target=None))
    with pytest.raises(MtlError, match=r"k=1000 is larger than the memory \(40 slots\)"):
        Trainer(mamt_config(tmp_path, options={"mamt": {"k": 1000}})).prepare()
    for key, value, message in [("psi", "1.5", "psi must be in"), ("phi", "-1", "phi must be >= 0"),
                                ("memory", "0", "memory must be >= 1"), ("metric", "l2", "expected one of")]:
        with pytest.raises(MtlError, match=message):
            mtl.create("weighting", "mamt", **{key: value})


@pytest.mark.parametrize("progress", [0.0, 0.25, 0.5, 0.9, 1.0])
def test_adaptive_sampler_probabilities_are_eq6(progress):
    sampler = mtl.create("sampler", "adaptive")
    sizes = {"mrpc": 300, "stsb": 500, "sst2": 1200}
    sampler.setup(sizes, "mrpc", 100, torch.Generator().manual_seed(0))
    n_aux = 1700
    raw = {"mrpc": 300 + progress * n_aux, "stsb": 500, "sst2": 1200}
    total = sum(raw.values())
    probs = sampler.probabilities(progress)
    for name in sizes:
        assert probs[name] == pytest.approx(raw[name] / total)


def test_adaptive_sampler_draws_follow_its_probabilities():
    sampler = mtl.create("sampler", "adaptive")
    sampler.setup({"t": 100, "a": 300}, "t", 1000, torch.Generator().manual_seed(1))
    n = 4000
    draws = [sampler.tasks(i, 0.5)[0] for i in range(n)]
    p = sampler.probabilities(0.5)["t"]  # (100 + 150) / 550
    observed = draws.count("t") / n
    assert abs(observed - p) < 4 * (p * (1 - p) / n) ** 0.5
