"""The contract pieces of gradient and loss-weighting methods: GradientWeighting (TorchJD's Jacobian, task-specific
gradients, unreached parameters), Step.task_losses, Step.reduce and Step.losses_after_update."""

from __future__ import annotations

import pytest
import torch
from conftest import invoke_cli

from mtl import GradientWeighting, Step, Weighting, hookimpl

TINY = ["--backbone", "tiny", "--max-steps", "3", "--batch-size", "8", "--max-length", "32", "--limit", "24",
        "--eval-limit", "8", "-q"]


class SumOfRows(GradientWeighting):
    """Aggregation by the plain sum of the rows: the gradient of Σ_t L_t, whatever computed the Jacobian."""

    def __init__(self):
        super().__init__()
        self.seen = None

    def aggregate(self, jacobian, tasks, step):
        self.seen = (jacobian.clone(), list(tasks))
        return jacobian.sum(dim=0)


class TwoHeads(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.backbone = torch.nn.Linear(4, 3)
        self.heads = torch.nn.ModuleDict({t: torch.nn.Linear(3, 1) for t in ("a", "b", "c")})

    def forward(self, task, x):
        return self.heads[task](torch.tanh(self.backbone(x))).squeeze(-1)


def _step(model, inputs, **extra):
    losses = {t: (model(t, x) - 1.0) ** 2 for t, x in inputs.items()}
    return Step(losses=losses, features={}, target="a", index=0, epoch=0, progress=0.0,
                shared_parameters=list(model.backbone.parameters()), **extra)


def test_gradient_weighting_gives_the_rows_to_aggregate_and_each_head_its_own_gradient():
    model = TwoHeads()
    g = torch.Generator().manual_seed(1)
    inputs = {"a": torch.randn(5, 4, generator=g), "b": torch.randn(7, 4, generator=g)}  # task c is not in the step
    weighting = SumOfRows()
    weighting.model = model
    weighting.backward(_step(model, inputs))
    got = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    # independent: each task's gradient by plain autograd, one task at a time
    jac_rows = []
    for t, x in inputs.items():
        model.zero_grad(set_to_none=True)
        ((model(t, x) - 1.0) ** 2).mean().backward()
        jac_rows.append(torch.cat([p.grad.reshape(-1) for p in model.backbone.parameters()]))
        for n, p in model.heads[t].named_parameters():
            assert torch.allclose(got[f"heads.{t}.{n}"], p.grad, atol=1e-6)
    jacobian, tasks = weighting.seen
    assert tasks == ["a", "b"]
    assert torch.allclose(jacobian, torch.stack(jac_rows), atol=1e-6)
    flat = torch.cat([got["backbone.weight"].reshape(-1), got["backbone.bias"].reshape(-1)])
    assert torch.allclose(flat, sum(jac_rows), atol=1e-6)
    assert not any(n.startswith("heads.c.") for n in got)  # an unreached head keeps no gradient


def test_gradient_weighting_adds_to_gradients_already_there_and_reduces_the_jacobian():
    model = TwoHeads()
    x = {"a": torch.ones(2, 4), "b": -torch.ones(3, 4)}
    for p in model.parameters():
        p.grad = torch.ones_like(p)  # e.g. a regularizer's term, back-propagated first
    calls = []

    def halve(tensor):
        calls.append(tensor.shape)
        return tensor / 2

    weighting = SumOfRows()
    weighting.model = model
    weighting.backward(_step(model, x, reduce_fn=halve))
    assert calls == [(2, sum(p.numel() for p in model.backbone.parameters()))]
    jacobian, _ = weighting.seen
    bias_rows = jacobian[:, -3:]  # the backbone bias is the last of the flattened shared parameters
    assert torch.allclose(model.backbone.bias.grad, 1 + bias_rows.sum(dim=0), atol=1e-6)
    model.zero_grad(set_to_none=True)
    ((model("a", x["a"]) - 1.0) ** 2).mean().backward()
    assert torch.allclose(2 * jacobian[0, -3:], model.backbone.bias.grad, atol=1e-6)  # the reduced (halved) rows


def test_task_losses_take_the_global_value_and_the_local_gradient():
    w = torch.nn.Parameter(torch.tensor(2.0))
    step = Step(losses={"a": torch.stack([w, 3 * w])}, features={}, target="a", index=0, epoch=0, progress=0.0,
                global_means={"a": 10.0})
    (loss,) = step.task_losses().values()
    assert float(loss.detach()) == pytest.approx(10.0)
    loss.backward()
    assert float(w.grad) == pytest.approx(2.0)  # d/dw mean(w, 3w)
    alone = Step(losses={"a": torch.tensor([1.0, 2.0])}, features={}, target="a", index=0, epoch=0, progress=0.0)
    assert float(alone.task_losses()["a"]) == pytest.approx(1.5)
    assert torch.equal(alone.reduce(torch.ones(2)), torch.ones(2))  # one process: the identity


class AfterStep(Weighting):
    family = "loss"
    records: list = []

    def after_step(self, step):
        before = {t: float(v.detach().mean()) for t, v in step.losses.items()}
        after = {t: float(v) for t, v in step.losses_after_update().items()}
        AfterStep.records.append((before, after))


class AfterStepPlugin:
    @hookimpl
    def register_weightings(self, register):
        register("after-step-probe", AfterStep, description="test: records the losses after each update")


def test_after_step_sees_the_losses_of_the_same_batches_under_the_updated_model(register_plugin, tmp_path):
    register_plugin(AfterStepPlugin())
    AfterStep.records = []
    result = invoke_cli("run", "--weighting", "after-step-probe", "--sampler", "all", *TINY, "--lr", "1e-3",
                        "-o", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    assert len(AfterStep.records) == 3
    for before, after in AfterStep.records:
        assert set(before) == set(after) == {"demo-paraphrase", "demo-similarity", "demo-sentiment"}
        assert all(torch.isfinite(torch.tensor(v)) for v in after.values())
    # a step with a large learning rate on one batch lowers that batch's loss (dropout aside) in most tasks
    drops = sum(after[t] < before[t] for before, after in AfterStep.records for t in before)
    assert drops >= 5
    with pytest.raises(RuntimeError, match="after_step"):
        Step(losses={}, features={}, target=None, index=0, epoch=0, progress=0.0).losses_after_update()
