"""PCGrad (Yu et al., NeurIPS 2020, Alg. 1): the projection on constructed gradients and on a real model step."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest
import torch
from test_trainer import DEMO

import mtl
from mtl import Step
from mtl.plugins.weightings.pcgrad import conflicts, project
from mtl.runs.config import RunConfig
from mtl.train.trainer import Trainer


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
    assert all(torch.equal(p, g) for p, g in zip(project(grads), grads))
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


def test_backward_visits_the_other_tasks_in_a_random_order_from_the_runs_generator():
    grads = [t(1, 0), t(-1, 1), t(-1, -2)]  # every pair conflicts; task 1's result depends on the order
    outcomes = set()
    for seed in range(12):
        w = mtl.create("weighting", "pcgrad")
        w.setup(types.SimpleNamespace(model=None, rng=torch.Generator().manual_seed(seed)))
        shared = torch.zeros(2, dtype=torch.float64, requires_grad=True)
        replay = torch.Generator().manual_seed(seed)
        orders = [torch.randperm(3, generator=replay).tolist() for _ in range(3)]
        losses = {f"task{i}": (g @ shared).reshape(1) for i, g in enumerate(grads)}  # ∇ = g_i
        w.backward(Step(losses=losses, features={}, target="task0", index=0, epoch=0, progress=0.0,
                        shared_parameters=[shared]))
        expected = np.sum(reference_projection([g.numpy() for g in grads], orders), axis=0)
        assert np.allclose(shared.grad.numpy(), expected)
        assert w.log()["pcgrad.conflicts"] == 3
        outcomes.add(tuple(np.round(shared.grad.numpy(), 6)))
    assert len(outcomes) > 1  # different generators give different orders, and the orders matter


def reference_projection(grads: list[np.ndarray], orders: list[list[int]]) -> list[np.ndarray]:
    """Algorithm 1 of the paper in float64 NumPy, written independently of the plugin."""
    out = []
    for i, g in enumerate(grads):
        g = g.copy()
        for j in orders[i]:
            if j != i and g @ grads[j] < 0:
                g = g - (g @ grads[j]) / (grads[j] @ grads[j]) * grads[j]
        out.append(g)
    return out


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
    # the orders PCGrad draws: for each task, a permutation from the run's generator (torch.randperm)
    replay = torch.Generator()
    replay.set_state(weighting.rng.get_state())
    orders = [torch.randperm(len(names), generator=replay).tolist() for _ in names]
    expected = np.sum(reference_projection(flat, orders), axis=0)
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
    assert step.weights == {n: 1.0 for n in names}  # logged as weight.<task>


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
        assert all(r[f"weight.{n}"] == 1.0 for n in r["tasks"])
