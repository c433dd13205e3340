"""PCGrad (Yu et al., NeurIPS 2020, Alg. 1): the plugin (TorchJD's ``PCGrad``, on the Gramian) against the hand-written
projection below, on constructed gradients and on a real model step.

``project`` is the algorithm written directly on the gradient vectors, independently of TorchJD, with the visiting
orders given: it is the reference. The plugin draws each task's order as ``torch.randperm(T)`` from the global
generator, forked and seeded with a number drawn from the run's generator (``run.rng``) at each step; the tests replay
that draw to give the reference the same orders. With two tasks the order does not matter.
"""

from __future__ import annotations

import json
import types
from collections.abc import Sequence

import numpy as np
import pytest
import torch
from helpers.runs import DEMO

import mtl
from mtl import Step
from mtl.runs.config import RunConfig
from mtl.training.trainer import Trainer


def project(grads: list[torch.Tensor], orders: Sequence[Sequence[int]] | None = None) -> list[torch.Tensor]:
    """PCGrad's projection (Alg. 1) of flat per-task gradients; ``orders[i]`` is the order in which task i
    visits the other tasks (indices; i itself is skipped; default: index order). Returns new tensors."""
    out = []
    for i, g in enumerate(grads):
        g = g.clone()
        for j in orders[i] if orders is not None else range(len(grads)):
            if j == i:
                continue
            dot = g.dot(grads[j])
            if dot < 0:
                g = g - (dot / grads[j].dot(grads[j])) * grads[j]
        out.append(g)
    return out


def conflicts(grads: list[torch.Tensor]) -> int:
    """The number of task pairs whose original gradients conflict (negative inner product)."""
    return sum(int(grads[i].dot(grads[j]) < 0) for i in range(len(grads)) for j in range(i + 1, len(grads)))


def t(*values):
    return torch.tensor(values, dtype=torch.float64)


def test_two_conflicting_gradients_are_projected_onto_each_others_normal_plane():
    g1, g2 = t(1, 0), t(-1, 1)
    p1, p2 = project([g1, g2])
    # g1 - (g1·g2 / |g2|²) g2 = [1, 0] + ½ [-1, 1];  g2 - (g2·g1 / |g1|²) g1 = [-1, 1] + [1, 0]
    assert torch.allclose(p1, t(0.5, 0.5)) and torch.allclose(p2, t(0.0, 1.0))
    assert float(p1 @ g2) == pytest.approx(0.0) and float(p2 @ g1) == pytest.approx(0.0)
    assert float(p1 @ p2) >= 0 and conflicts([g1, g2]) == 1
    assert torch.equal(g1, t(1, 0)) and torch.equal(g2, t(-1, 1))  # inputs untouched


def test_gradients_without_conflict_are_unchanged():
    grads = [t(1, 2, 0), t(0, 1, 1), t(3, 0, 1)]
    assert conflicts(grads) == 0
    assert all(torch.equal(p, g) for p, g in zip(project(grads), grads, strict=True))
    assert torch.equal(project([t(1, -2)])[0], t(1, -2))


def test_the_order_of_the_other_tasks_matters_and_uses_the_original_gradients():
    g1, g2, g3 = t(1, 0), t(-1, 1), t(-1, -2)
    # task 1 visiting 2 then 3: [1,0] -> [0.5,0.5] (·g2 = -1) -> [0.5,0.5] - (-1.5/5)[-1,-2] = [0.2,-0.1]
    assert torch.allclose(project([g1, g2, g3], [[0, 1, 2], [], []])[0], t(0.2, -0.1))
    # visiting 3 then 2: [1,0] -> [1,0] + (1/5)[-1,-2] = [0.8,-0.4] -> + 0.6 [-1,1] = [0.2,0.2]
    assert torch.allclose(project([g1, g2, g3], [[2, 1], [], []])[0], t(0.2, 0.2))
    # task 2 is projected on the original g1, not on task 1's projected gradient: g2·g3 = -1 < 0 too
    expected = g2 - (-1.0 / 1.0) * g1
    expected = expected - (expected @ g3) / (g3 @ g3) * g3 if expected @ g3 < 0 else expected
    assert torch.allclose(project([g1, g2, g3], [[], [0, 2], []])[1], expected)
    assert conflicts([g1, g2, g3]) == 3


def replayed_orders(seed: int, n: int) -> list[list[int]]:
    """The visiting orders the plugin draws at its first step when its run generator is seeded with ``seed``."""
    step_seed = int(torch.randint(0, 2**62, (1,), generator=torch.Generator().manual_seed(seed)))
    replay = torch.Generator().manual_seed(step_seed)
    return [torch.randperm(n, generator=replay).tolist() for _ in range(n)]


def plugin_step(grads: list[torch.Tensor], seed: int):
    """One backward of the ``pcgrad`` plugin on losses whose gradients are ``grads`` (float64); returns the plugin,
    the update it set and the weights it recorded."""
    w = mtl.create("weighting", "pcgrad")
    names = [f"task{i}" for i in range(len(grads))]
    w.setup(types.SimpleNamespace(model=None, rng=torch.Generator().manual_seed(seed), tasks=names, target=names[0]))
    shared = torch.zeros(grads[0].shape[0], dtype=torch.float64, requires_grad=True)
    losses = {name: (g @ shared).reshape(1) for name, g in zip(names, grads, strict=True)}  # ∇ = g_i
    step = Step(losses=losses, features={}, target=names[0], index=0, epoch=0, progress=0.0, shared_parameters=[shared])
    w.backward(step)
    return w, shared.grad, step.weights


def test_the_plugin_equals_the_reference_on_two_tasks_whatever_the_order():
    for g1, g2 in [(t(1, 0), t(-1, 1)), (t(3, -1, 2), t(-2, 1, 0.5)), (t(1, 2), t(2, 1))]:
        expected = sum(project([g1, g2]))
        for seed in range(3):
            w, update, weights = plugin_step([g1, g2], seed)
            assert torch.allclose(update, expected, rtol=1e-12, atol=1e-12)
            # the recorded weights are the coefficients of the original gradients in the update
            assert torch.allclose(weights["task0"] * g1 + weights["task1"] * g2, update, rtol=1e-6, atol=1e-6)
            assert w.log()["pcgrad.conflicts"] == conflicts([g1, g2])


def test_the_plugin_equals_the_reference_with_the_replayed_orders_and_the_orders_matter():
    grads = [t(1, 0, 0.5), t(-1, 1, 0), t(-1, -2, 0.3), t(0.2, -0.5, -1)]  # task 0's result depends on the order
    outcomes = set()
    for seed in range(12):
        global_state = torch.get_rng_state()
        w, update, _ = plugin_step(grads, seed)
        assert torch.equal(torch.get_rng_state(), global_state)  # the global stream (dropout) is not shifted
        expected = torch.stack(project(grads, replayed_orders(seed, len(grads)))).sum(dim=0)
        assert torch.allclose(update, expected, rtol=1e-12, atol=1e-12)
        again = plugin_step(grads, seed)[1]
        assert torch.equal(again, update)  # the same run generator, the same orders
        assert w.log()["pcgrad.conflicts"] == conflicts(grads)
        outcomes.add(tuple(np.round(update.numpy(), 9)))
    assert len(outcomes) > 1  # different generators give different orders, and the orders matter


def _prepared(tmp_path, **overrides):
    values = dict(DEMO, backbone="tiny", weighting="pcgrad", sampler="all", batch_size=8, max_length=32,
                  limit=64, eval_limit=16, lr=1e-3, log_every=1, seed=0, max_steps=3, output=str(tmp_path / "run"))
    values.update(overrides)
    return Trainer(RunConfig(**values)).prepare()


def test_a_real_step_gives_the_shared_parameters_the_sum_of_projected_gradients(tmp_path):
    trainer = _prepared(tmp_path, seed=2)  # a seed whose first step has conflicting task gradients
    model, weighting = trainer.model, trainer.weighting
    model.eval()  # no dropout: the forward passes below are identical
    names = trainer.sampler.tasks(0, 0.0)
    assert names == ["demo-paraphrase", "demo-similarity", "demo-sentiment"]
    batches = {n: next(trainer.streams[n]) for n in names}
    shared = [p for p in model.backbone.parameters() if p.requires_grad]
    shared_ids = {id(p) for p in shared}

    def losses():
        return {n: trainer.tasks[n].loss(model(n, batches[n])[0], batches[n]["labels"]) for n in names}

    # independent per-task gradients: one plain backward per task
    plain = {}
    for n in names:
        model.zero_grad(set_to_none=True)
        losses()[n].mean().backward()
        plain[n] = {name: (p.grad.clone() if p.grad is not None else None) for name, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)

    shared_names = [name for name, p in model.named_parameters() if id(p) in shared_ids]
    used = [name for name in shared_names if any(plain[n][name] is not None for n in names)]
    numel = {name: p.numel() for name, p in model.named_parameters()}

    def vector(n):  # task n's gradient on the shared parameters, flat, zero where it does not reach
        return np.concatenate([plain[n][name].double().numpy().reshape(-1) if plain[n][name] is not None
                               else np.zeros(numel[name]) for name in used])

    flat = [vector(n) for n in names]
    # the orders PCGrad draws: a seed from the run's generator, then for each task a torch.randperm of the tasks
    replay = torch.Generator()
    replay.set_state(weighting.rng.get_state())
    seeded = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,), generator=replay)))
    orders = [torch.randperm(len(names), generator=seeded).tolist() for _ in names]
    expected = torch.stack(project([torch.from_numpy(f) for f in flat], orders)).sum(dim=0).numpy()
    negative_pairs = sum(flat[i] @ flat[j] < 0 for i in range(3) for j in range(i + 1, 3))
    assert negative_pairs >= 1  # the step exercises the projection

    step = Step(losses=losses(), features={}, target=trainer.config.target, index=0, epoch=0, progress=0.0,
                shared_parameters=shared)
    weighting.backward(step)
    params = dict(model.named_parameters())
    actual = np.concatenate([params[name].grad.double().numpy().reshape(-1) for name in used])
    scale = np.abs(expected).max()
    assert np.allclose(actual, expected, rtol=1e-4, atol=1e-5 * scale)
    assert not np.allclose(actual, np.sum(flat, axis=0), rtol=1e-3, atol=1e-4 * scale)  # not plain summation
    for name in shared_names:
        if name not in used:
            assert params[name].grad is None
    # task-specific parameters (the heads) get their plain gradients: the gradient of the sum of task losses
    for name, p in params.items():
        if id(p) in shared_ids:
            continue
        grads = [plain[n][name] for n in names if plain[n][name] is not None]
        assert grads, name
        assert torch.allclose(p.grad, torch.stack(grads).sum(0), rtol=1e-5, atol=1e-7)
    log = weighting.log()
    assert log["pcgrad.conflicts"] == negative_pairs
    # logged as weight.<task>: the coefficients of the original gradients in the update
    assert set(step.weights) == set(names) and any(abs(step.weights[n] - 1.0) > 1e-3 for n in names)
    combined = sum(step.weights[n] * f for n, f in zip(names, flat, strict=True))
    assert np.allclose(actual, combined, rtol=1e-3, atol=1e-4 * scale)


def test_one_task_per_step_is_plain_backpropagation(tmp_path):
    trainer = _prepared(tmp_path, sampler="proportional")
    model = trainer.model
    model.eval()
    batch = next(trainer.streams["demo-similarity"])
    shared = [p for p in model.backbone.parameters() if p.requires_grad]

    def step():
        loss = trainer.tasks["demo-similarity"].loss(model("demo-similarity", batch)[0], batch["labels"])
        return Step(losses={"demo-similarity": loss}, features={}, target=trainer.config.target, index=0, epoch=0,
                    progress=0.0, shared_parameters=shared)

    mtl.create("weighting", "uniform").backward(step())
    plain = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    trainer.weighting.backward(step())
    surgery = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    assert surgery.keys() == plain.keys()
    assert all(torch.allclose(surgery[k], plain[k], rtol=1e-6, atol=1e-8) for k in plain)
    assert trainer.weighting.log()["pcgrad.conflicts"] == 0


def test_pcgrad_with_the_all_sampler_trains_and_logs(tmp_path):
    trainer = _prepared(tmp_path)
    trainer.train()
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "tasks" in r]
    assert [r["step"] for r in steps] == [0, 1, 2]
    for r in steps:
        assert r["tasks"] == ["demo-paraphrase", "demo-similarity", "demo-sentiment"]
        assert 0 <= r["pcgrad.conflicts"] <= 3
        assert all(r[f"weight.{n}"] >= 1.0 for n in r["tasks"])  # 1 plus what projections add
        if r["pcgrad.conflicts"] == 0:
            assert all(r[f"weight.{n}"] == 1.0 for n in r["tasks"])
