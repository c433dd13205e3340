"""The loss-weighting family (issue 13, part B): each method against its paper's formula written out here on
constructed losses (values, the gradient reaching the model, the gradient of its learnable parameters), its state,
and every method end to end: `mtl run --sampler all` logs weight.<task>, and the stateful ones resume bit for bit."""

from __future__ import annotations

import json
import math
import types

import pytest
import torch
from conftest import assert_one_line_error, invoke_cli
from helpers.runs import assert_same_tensors, run_files, whole_and_crashed

import mtl
from mtl import Step
from mtl.errors import MtlError, OptionError
from mtl.training.trainer import Trainer

TASKS = ["a", "b", "c"]
TARGETS = {"a": 1.0, "b": 3.0, "c": -2.0}  # different loss scales per task


class ThreeHeads(torch.nn.Module):
    """A shared layer and one linear head per task: the smallest multi-task model."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.backbone = torch.nn.Linear(4, 3)
        self.heads = torch.nn.ModuleDict({t: torch.nn.Linear(3, 1) for t in TASKS})

    def forward(self, task, x):
        return self.heads[task](torch.tanh(self.backbone(x))).squeeze(-1)


def instance_losses(model, task, x):
    return (model(task, x) - TARGETS[task]) ** 2


def inputs(tasks=TASKS, seed=1):
    g = torch.Generator().manual_seed(seed)
    return {t: torch.randn(4 + i, 4, generator=g) for i, t in enumerate(tasks)}


def make_step(model, xs, **extra):
    losses = {t: instance_losses(model, t, x) for t, x in xs.items()}
    fields = {"features": {}, "target": "a", "index": 0, "epoch": 0, "progress": 0.0,
              "shared_parameters": list(model.backbone.parameters())}
    fields.update(extra)
    return Step(losses=losses, **fields)


def fake_run(model=None, seed=0):
    return types.SimpleNamespace(tasks=dict.fromkeys(TASKS), device=torch.device("cpu"), model=model,
                                 rng=torch.Generator().manual_seed(seed), target="a")


def mean_losses(model, xs) -> dict[str, float]:
    with torch.no_grad():
        return {t: float(instance_losses(model, t, x).mean()) for t, x in xs.items()}


def task_gradients(model, xs) -> dict[str, dict[str, torch.Tensor]]:
    """Each task's gradient of its mean loss, by plain autograd, one task at a time."""
    out = {}
    for t, x in xs.items():
        model.zero_grad(set_to_none=True)
        instance_losses(model, t, x).mean().backward()
        out[t] = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return out


def assert_model_gradient(model, grads, weights) -> None:
    """The model's gradient is Σ_t weights[t]·∇L_t (a parameter no task reaches has none)."""
    for name, p in model.named_parameters():
        parts = [weights[t] * g[name] for t, g in grads.items() if name in g]
        if not parts:
            assert p.grad is None, name
            continue
        assert p.grad is not None, name
        assert torch.allclose(p.grad, sum(parts), atol=1e-6, rtol=1e-5), name


def backward(weighting, model, xs, **extra) -> tuple[Step, torch.Tensor | None]:
    """One step of ``weighting`` on a fresh graph: (the step, the loss it returned, or None for a backward)."""
    model.zero_grad(set_to_none=True)
    step = make_step(model, xs, **extra)
    if type(weighting).backward is not mtl.Weighting.backward:
        weighting.backward(step)
        return step, None
    loss = weighting.loss(step)
    loss.backward()
    return step, loss


# ------------------------------------------------------------------------------------------------ static
def test_static_is_the_given_weighted_sum_and_unnamed_tasks_weigh_one():
    model, xs = ThreeHeads(), inputs()
    weighting = mtl.create("weighting", "static", weights="a:2,b:0.5")
    weighting.setup(fake_run(model))
    grads, L = task_gradients(model, xs), mean_losses(model, xs)
    step, loss = backward(weighting, model, xs)
    assert float(loss.detach()) == pytest.approx(2 * L["a"] + 0.5 * L["b"] + 1 * L["c"], rel=1e-6)
    assert step.weights == {"a": 2.0, "b": 0.5, "c": 1.0}
    assert_model_gradient(model, grads, {"a": 2.0, "b": 0.5, "c": 1.0})
    # one task per step: that task's loss times its weight
    step, loss = backward(weighting, model, {"b": xs["b"]})
    assert float(loss.detach()) == pytest.approx(0.5 * L["b"], rel=1e-6) and step.weights == {"b": 0.5}


def test_static_weights_naming_an_unknown_task_or_negative_are_errors(tmp_path):
    weighting = mtl.create("weighting", "static", weights={"bb": 2.0})
    with pytest.raises(MtlError, match="'bb'.*Did you mean 'b'"):
        weighting.setup(fake_run())
    with pytest.raises(OptionError, match="must be >= 0"):
        mtl.create("weighting", "static", weights={"a": -1.0})
    result = invoke_cli("run", "--weighting", "static", "--set", "static.weights=demo-paraphrse:2", *TINY,
                        "-o", str(tmp_path / "run"))
    assert_one_line_error(result, "demo-paraphrse", "demo-paraphrase")


# ------------------------------------------------------------------------------------------------ uw
def test_uw_loss_model_gradient_and_log_variance_gradient():
    model, xs = ThreeHeads(), inputs()
    weighting = mtl.create("weighting", "uw")
    weighting.setup(fake_run(model))
    (log_var,) = weighting.parameters()
    s = {"a": 0.3, "b": -0.7, "c": 0.1}
    with torch.no_grad():
        log_var.copy_(torch.tensor([s[t] for t in TASKS]))
    grads, L = task_gradients(model, xs), mean_losses(model, xs)
    step, loss = backward(weighting, model, xs)
    # Kendall et al. (common form of Eq. 7): Σ ½e^{-s}L + ½s;  d/ds = ½(1 − e^{-s}L);  the model sees ½e^{-s}∇L
    expected = sum(0.5 * math.exp(-s[t]) * L[t] + 0.5 * s[t] for t in TASKS)
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-6)
    expected = [0.5 * (1 - math.exp(-s[t]) * L[t]) for t in TASKS]
    assert torch.allclose(log_var.grad, torch.tensor(expected), atol=1e-6)
    half_precision = {t: 0.5 * math.exp(-s[t]) for t in TASKS}
    assert step.weights == pytest.approx(half_precision)
    assert_model_gradient(model, grads, half_precision)


def test_uw_with_a_subset_of_tasks_trains_only_their_log_variances():
    model, xs = ThreeHeads(), inputs(["c", "a"])  # task b not in the step, the others out of run order
    weighting = mtl.create("weighting", "uw")
    weighting.setup(fake_run(model))
    (log_var,) = weighting.parameters()
    with torch.no_grad():
        log_var.copy_(torch.tensor([0.2, 0.4, -0.3]))
    L = mean_losses(model, xs)
    _, loss = backward(weighting, model, xs)
    expected = 0.5 * math.exp(-0.2) * L["a"] + 0.1 + 0.5 * math.exp(0.3) * L["c"] - 0.15
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-6)
    expected = [0.5 * (1 - math.exp(-0.2) * L["a"]), 0.0, 0.5 * (1 - math.exp(0.3) * L["c"])]
    assert torch.allclose(log_var.grad, torch.tensor(expected), atol=1e-6)


# ------------------------------------------------------------------------------------------------ imtl-l
def test_imtl_l_loss_model_gradient_and_scale_gradient():
    model, xs = ThreeHeads(), inputs()
    weighting = mtl.create("weighting", "imtl-l")
    weighting.setup(fake_run(model))
    (scale,) = weighting.parameters()
    s = {"a": -0.4, "b": 0.25, "c": 0.0}
    with torch.no_grad():
        scale.copy_(torch.tensor([s[t] for t in TASKS]))
    grads, L = task_gradients(model, xs), mean_losses(model, xs)
    step, loss = backward(weighting, model, xs)
    # Liu et al. (IMTL-L): Σ e^{s}L − s;  d/ds = e^{s}L − 1;  the model sees e^{s}∇L
    assert float(loss.detach()) == pytest.approx(sum(math.exp(s[t]) * L[t] - s[t] for t in TASKS), rel=1e-6)
    assert torch.allclose(scale.grad, torch.tensor([math.exp(s[t]) * L[t] - 1 for t in TASKS]), atol=1e-5)
    weights = {t: math.exp(s[t]) for t in TASKS}
    assert step.weights == pytest.approx(weights)
    assert_model_gradient(model, grads, weights)


# ------------------------------------------------------------------------------------------------ gls
def test_gls_is_the_geometric_mean_and_weights_small_losses_more():
    model, xs = ThreeHeads(), inputs()
    weighting = mtl.create("weighting", "gls")
    grads, L = task_gradients(model, xs), mean_losses(model, xs)
    step, loss = backward(weighting, model, xs)
    geometric = (L["a"] * L["b"] * L["c"]) ** (1 / 3)
    assert float(loss.detach()) == pytest.approx(geometric, rel=1e-5)
    weights = {t: geometric / (3 * L[t]) for t in TASKS}  # d (Π L)^{1/3} / d L_t
    assert step.weights == pytest.approx(weights, rel=1e-5)
    assert_model_gradient(model, grads, weights)
    smallest = min(L, key=L.get)
    assert max(step.weights, key=step.weights.get) == smallest


# ------------------------------------------------------------------------------------------------ dwa
def constant_step(values: dict[str, float], epoch: int, theta: torch.Tensor) -> Step:
    """A step whose task t has mean loss values[t]·θ (θ = 1), so that the gradient of the loss w.r.t. θ is
    Σ_t w_t·values[t]."""
    return Step(losses={t: (v * theta).expand(2) for t, v in values.items()}, features={}, target="a",
                index=0, epoch=epoch, progress=0.0)


def dwa_weights(previous, before, temperature=2.0) -> dict[str, float]:
    """Liu, Johns & Davison, Eq. 1: K·exp(r_k/T) / Σ_i exp(r_i/T), r_k = L_k(t−1)/L_k(t−2)."""
    rates = {t: previous[t] / before[t] for t in TASKS}
    total = sum(math.exp(r / temperature) for r in rates.values())
    return {t: 3 * math.exp(rates[t] / temperature) / total for t in TASKS}


def test_dwa_weights_over_three_constructed_epochs():
    weighting = mtl.create("weighting", "dwa")
    weighting.setup(fake_run())
    theta = torch.tensor(1.0, requires_grad=True)
    epochs = [
        [{"a": 1.0, "b": 4.0, "c": 1.0}, {"a": 3.0, "b": 4.0, "c": 1.0}],  # averages a 2, b 4, c 1
        [{"a": 1.0, "b": 4.0, "c": 1.0}, {"a": 1.0, "b": 2.0, "c": 1.0}],  # averages a 1, b 3, c 1
        [{"a": 0.5, "b": 1.5, "c": 2.0}, {"a": 0.5}],  # a step with one task: a's average 0.5, b 1.5, c 2
    ]
    seen = []
    for epoch, steps in enumerate(epochs):
        for values in steps:
            step = constant_step(values, epoch, theta)
            theta.grad = None
            loss = weighting.loss(step)
            loss.backward()
            assert float(theta.grad) == pytest.approx(sum(step.weights[t] * v for t, v in values.items()))
            assert float(loss.detach()) == pytest.approx(sum(step.weights[t] * v for t, v in values.items()))
            seen.append((epoch, dict(step.weights)))
    assert all(w == {t: 1.0 for t in w} for epoch, w in seen if epoch < 2)  # the first two epochs: 1
    expected = dwa_weights({"a": 1.0, "b": 3.0, "c": 1.0}, {"a": 2.0, "b": 4.0, "c": 1.0})
    assert seen[4][1] == pytest.approx(expected) and seen[5][1] == pytest.approx({"a": expected["a"]})
    assert sum(expected.values()) == pytest.approx(3.0) and expected["c"] > expected["b"] > expected["a"]
    # the fourth epoch: r from epochs 2 and 1; the state (JSON-able) carries it to a fresh weighting
    fresh = mtl.create("weighting", "dwa")
    fresh.setup(fake_run())
    fresh.load_state_dict(json.loads(json.dumps(weighting.state_dict())))
    step = constant_step({"a": 1.0, "b": 1.0, "c": 1.0}, 3, theta)
    fresh.loss(step)
    assert step.weights == pytest.approx(dwa_weights({"a": 0.5, "b": 1.5, "c": 2.0}, {"a": 1.0, "b": 3.0, "c": 1.0}))


def test_dwa_temperature_must_be_positive():
    with pytest.raises(OptionError, match="temperature"):
        mtl.create("weighting", "dwa", temperature=0)


# ------------------------------------------------------------------------------------------------ famo
def famo_reference_update(logits, before, after, lr, decay, state):
    """FAMO (Liu et al., Alg. 1/2): δ = log(L_before + ε) − log(L_after + ε); the logits' gradient is the softmax's
    Jacobian transposed times δ, g_j = z_j·(δ_j − Σ_i z_i δ_i); then one Adam step with L2 decay γ (torch.optim.Adam's
    update, written out: β = (0.9, 0.999), ε = 1e-8, bias-corrected moments)."""
    eps = 1e-8
    z = torch.softmax(logits.double(), 0)
    delta = torch.log(before.double() + eps) - torch.log(after.double() + eps)
    g = z * (delta - (z * delta).sum()) + decay * logits.double()
    state["t"] = state.get("t", 0) + 1
    state["m"] = 0.9 * state.get("m", torch.zeros_like(g)) + 0.1 * g
    state["v"] = 0.999 * state.get("v", torch.zeros_like(g)) + 0.001 * g * g
    m_hat, v_hat = state["m"] / (1 - 0.9 ** state["t"]), state["v"] / (1 - 0.999 ** state["t"])
    return logits.double() - lr * m_hat / (v_hat.sqrt() + 1e-8)


def famo_step(weighting, model, xs, after: torch.Tensor):
    """One FAMO step: backward on this step's losses, then after_step with ``after`` as the updated losses."""
    step, loss = backward(weighting, model, xs)
    step.recompute_fn = lambda: dict(zip(TASKS, after.unbind(), strict=True))
    weighting.after_step(step)
    return step, loss


def test_famo_loss_gradient_and_logit_update_on_a_constructed_before_and_after():
    model, xs = ThreeHeads(), inputs()
    weighting = mtl.create("weighting", "famo", logits_lr=0.1, logits_decay=0.01)
    weighting.setup(fake_run(model))
    assert weighting.parameters() == []  # FAMO's own Adam trains the logits, not the run's optimizer
    start = torch.tensor([0.2, -0.1, 0.0])
    weighting.load_state_dict({"logits": start})
    grads, L = task_gradients(model, xs), mean_losses(model, xs)
    before = torch.tensor([L[t] for t in TASKS])
    after = before * torch.tensor([0.9, 1.05, 0.7])  # a fell, b rose, c fell most
    step, loss = famo_step(weighting, model, xs, after)
    z = torch.softmax(start.double(), 0)
    c = 1 / float((z / (before.double() + 1e-8)).sum())
    assert float(loss.detach()) == pytest.approx(c * float((z * torch.log(before.double() + 1e-8)).sum()), rel=1e-5)
    coefficients = {t: c * float(z[i]) / L[t] for i, t in enumerate(TASKS)}  # c·z_i/L_i, summing to 1
    assert step.weights == pytest.approx(coefficients, rel=1e-5) and sum(coefficients.values()) == pytest.approx(1)
    assert_model_gradient(model, grads, coefficients)

    adam = {}
    expected = famo_reference_update(start, before, after, 0.1, 0.01, adam)
    assert torch.allclose(weighting.logits().double(), expected, atol=1e-6)
    moved = (weighting.logits() - start).tolist()  # c, whose loss fell most, loses weight; a and b gain
    assert moved[2] < 0 < min(moved[0], moved[1])

    # the Adam moments are the weighting's state: a fresh FAMO loaded from it makes the same second update
    state = weighting.state_dict()
    assert set(state) == {"logits", "adam_step", "adam_exp_avg", "adam_exp_avg_sq"}
    twin = mtl.create("weighting", "famo", logits_lr=0.1, logits_decay=0.01)
    twin.setup(fake_run(model))
    twin.load_state_dict({k: v.clone() for k, v in state.items()})
    after2 = after * torch.tensor([1.0, 0.8, 1.1])
    famo_step(weighting, model, xs, after2)
    famo_step(twin, model, xs, after2)
    second = famo_reference_update(expected.float(), before, after2, 0.1, 0.01, adam)
    assert torch.allclose(weighting.logits().double(), second, atol=1e-6)
    assert torch.equal(twin.logits(), weighting.logits())


def test_famo_needs_every_task_in_every_step():
    model = ThreeHeads()
    weighting = mtl.create("weighting", "famo")
    weighting.setup(fake_run(model))
    with pytest.raises(MtlError, match=r"--sampler all.*step 0 has no batch of b"):
        weighting.loss(make_step(model, inputs(["a", "c"])))


# ------------------------------------------------------------------------------------------------ rlw
def test_rlw_weights_are_positive_sum_to_one_and_follow_the_runs_seed():
    model, xs = ThreeHeads(), inputs()
    grads, L = task_gradients(model, xs), mean_losses(model, xs)

    def weights_of(seed, steps=3):
        weighting = mtl.create("weighting", "rlw")
        weighting.setup(fake_run(model, seed))
        out = []
        for _ in range(steps):
            step, loss = backward(weighting, model, xs)
            assert float(loss.detach()) == pytest.approx(sum(step.weights[t] * L[t] for t in TASKS), rel=1e-6)
            out.append(dict(step.weights))
        return out, step

    first, _ = weights_of(7)
    assert_model_gradient(model, grads, first[-1])
    for weights in first:
        assert all(w > 0 for w in weights.values()) and sum(weights.values()) == pytest.approx(1.0)
    assert first[0] != first[1]  # new weights every step
    assert weights_of(7)[0] == first  # the same seed draws the same weights
    assert weights_of(8)[0] != first
    # they are softmax(N(0, I)) drawn from the run's generator
    g = torch.Generator().manual_seed(7)
    reference = [torch.softmax(torch.randn(3, generator=g), 0) for _ in range(3)]
    assert [v for w in first for v in w.values()] == pytest.approx([v for r in reference for v in r.tolist()])


# ------------------------------------------------------------------------------------------------ stch
def stch_value(L, z, mu):
    """Lin et al. (ICML 2024): μ·log Σ exp(λ_i(L_i − z_i)/μ) with λ_i = 1/T."""
    return mu * math.log(sum(math.exp((L[t] - z[t]) / (len(L) * mu)) for t in L))


@pytest.mark.parametrize("mu", [1.0, 0.05])
def test_stch_with_the_zero_reference(mu):
    model, xs = ThreeHeads(), inputs()
    weighting = mtl.create("weighting", "stch", mu=mu)
    grads, L = task_gradients(model, xs), mean_losses(model, xs)
    step, loss = backward(weighting, model, xs)
    zero = dict.fromkeys(TASKS, 0.0)
    assert float(loss.detach()) == pytest.approx(stch_value(L, zero, mu), rel=1e-5)
    exponent = {t: math.exp((L[t] - max(L.values())) / (3 * mu)) for t in TASKS}
    weights = {t: exponent[t] / sum(exponent.values()) / 3 for t in TASKS}  # λ_i·softmax_i
    assert step.weights == pytest.approx(weights, rel=1e-4, abs=1e-9)
    assert_model_gradient(model, grads, weights)
    assert weighting.state_dict() == {"minimum": {}}


def test_stch_with_the_running_minimum_as_reference():
    weighting = mtl.create("weighting", "stch", reference="minimum", mu=0.5)
    theta = torch.tensor(1.0, requires_grad=True)
    history = [{"a": 2.0, "b": 1.0, "c": 4.0}, {"a": 1.0, "b": 3.0, "c": 4.5}, {"a": 1.5, "b": 2.0, "c": 3.0}]
    minimum = {}
    for values in history:
        for t, v in values.items():
            minimum[t] = min(minimum.get(t, v), v)  # this step included
        loss = weighting.loss(constant_step(values, 0, theta))
        assert float(loss.detach()) == pytest.approx(stch_value(values, minimum, 0.5), rel=1e-5)
    assert weighting.state_dict() == {"minimum": {"a": 1.0, "b": 1.0, "c": 3.0}}
    fresh = mtl.create("weighting", "stch", reference="minimum", mu=0.5)
    fresh.load_state_dict(json.loads(json.dumps(weighting.state_dict())))
    values = {"a": 2.0, "b": 2.0, "c": 5.0}
    loss = fresh.loss(constant_step(values, 0, theta))
    assert float(loss.detach()) == pytest.approx(stch_value(values, {"a": 1.0, "b": 1.0, "c": 3.0}, 0.5), rel=1e-5)
    with pytest.raises(OptionError, match="mu"):
        mtl.create("weighting", "stch", mu=0)


# ------------------------------------------------------------------------------------------------ gradnorm
class TwoTaskNet(torch.nn.Module):
    """x → tanh(A·x + a) → W·u + b (W: the last shared layer) → each task's head h_t·z + c_t."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.backbone = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
        self.heads = torch.nn.ModuleDict({t: torch.nn.Linear(2, 1) for t in ("a", "b")})

    def forward(self, task, x):
        return self.heads[task](self.backbone(x)).squeeze(-1)


def gradnorm_by_hand(net, xs, ys, weights, initial, alpha):  # initial None: L(0) = these losses
    """GradNorm (Chen et al., Eqs. 1–2) written out for TwoTaskNet with squared error: ∇_W L_t =
    (2/N) Σ_n (y_n − t_n)·h_tᵀ·u_nᵀ; G_t = w_t·‖∇_W L_t‖; r_t = (L_t/L_t(0)) / mean; the gradient of
    Σ_t |G_t − Ḡ·r_t^α| (targets constant) w.r.t. w_t is sign(G_t − target_t)·‖∇_W L_t‖."""
    first = net.backbone[0]
    layer = net.backbone[2]
    norms, losses = [], []
    with torch.no_grad():
        for t in ("a", "b"):
            u = torch.tanh(xs[t] @ first.weight.T + first.bias)  # [N, 4]
            y = (u @ layer.weight.T + layer.bias) @ net.heads[t].weight[0] + net.heads[t].bias[0]  # [N]
            residual = y - ys[t]
            losses.append(float((residual ** 2).mean()))
            h = net.heads[t].weight[0]  # [2]
            grad_w = (2 / len(y)) * torch.einsum("n,i,nj->ij", residual, h, u)  # [2, 4]
            norms.append(float(grad_w.norm()))
    G = [w * n for w, n in zip(weights, norms, strict=True)]
    initial = losses if initial is None else initial
    ratios = [L / L0 for L, L0 in zip(losses, initial, strict=True)]
    r = [q / (sum(ratios) / 2) for q in ratios]
    targets = [(sum(G) / 2) * ri ** alpha for ri in r]
    gradient = [math.copysign(1.0, g - tgt) * n for g, tgt, n in zip(G, targets, norms, strict=True)]
    balance = sum(abs(g - tgt) for g, tgt in zip(G, targets, strict=True))
    return gradient, balance, losses, norms


def gradnorm_step(weighting, net, xs, ys, reduce_fn=None):
    net.zero_grad(set_to_none=True)
    for p in weighting.parameters():
        p.grad = None
    losses = {t: (net(t, x) - ys[t]) ** 2 for t, x in xs.items()}
    step = Step(losses=losses, features={}, target="a", index=0, epoch=0, progress=0.0,
                shared_parameters=list(net.backbone.parameters()), reduce_fn=reduce_fn)
    weighting.backward(step)
    return step


def test_gradnorm_weight_gradient_on_a_two_task_model_computed_by_hand():
    net = TwoTaskNet()
    g = torch.Generator().manual_seed(5)
    xs = {"a": torch.randn(6, 3, generator=g), "b": torch.randn(5, 3, generator=g)}
    ys = {"a": torch.randn(6, generator=g), "b": 4 + torch.randn(5, generator=g)}
    weighting = mtl.create("weighting", "gradnorm", alpha=1.5)
    weighting.setup(types.SimpleNamespace(tasks={"a": None, "b": None}, device=torch.device("cpu")))
    (w,) = weighting.parameters()
    assert w.tolist() == [1.0, 1.0]

    # step 0: L(0) = L, r = 1, the target is the mean norm: the larger gradient's weight is pushed down
    step = gradnorm_step(weighting, net, xs, ys)
    gradient, balance, initial, norms = gradnorm_by_hand(net, xs, ys, [1.0, 1.0], None, 1.5)
    assert (gradient[0] > 0) == (norms[0] > norms[1]) and gradient[0] * gradient[1] < 0
    assert weighting.layer is net.backbone[2].weight  # the last shared layer, not the first
    assert torch.allclose(w.grad, torch.tensor(gradient), atol=1e-5)
    assert weighting.log()["gradnorm.balance"] == pytest.approx(balance, rel=1e-5)
    assert step.weights == {"a": 1.0, "b": 1.0}
    assert weighting.state_dict() == {"initial_losses": pytest.approx(dict(zip("ab", initial, strict=True)))}
    # the network trains on Σ w_t·L_t with w constant: shared and head gradients as plain autograd gives them
    reference = TwoTaskNet()
    sum(((reference(t, x) - ys[t]) ** 2).mean() for t, x in xs.items()).backward()
    for (name, p), q in zip(net.named_parameters(), reference.parameters(), strict=True):
        assert torch.allclose(p.grad, q.grad, atol=1e-6), name

    # a later step: other weights and other losses (r ≠ 1), gradients of W averaged over ranks (here doubled)
    with torch.no_grad():
        w.copy_(torch.tensor([1.3, 0.7]))
        net.heads["b"].bias += 0.5
    shapes = []

    def doubled(tensor):
        shapes.append(tuple(tensor.shape))
        return 2 * tensor

    step = gradnorm_step(weighting, net, xs, ys, reduce_fn=doubled)
    gradient, balance, losses, _ = gradnorm_by_hand(net, xs, ys, [1.3, 0.7], initial, 1.5)
    assert losses != initial
    assert shapes == [(2, 8)]  # both tasks' gradients of W [2, 4], reduced before the norms are taken
    assert torch.allclose(w.grad, 2 * torch.tensor(gradient), atol=1e-5)
    assert weighting.log()["gradnorm.balance"] == pytest.approx(2 * balance, rel=1e-5)
    assert step.weights == pytest.approx({"a": 1.3, "b": 0.7})
    reference = TwoTaskNet()
    with torch.no_grad():
        reference.heads["b"].bias += 0.5
    pairs = zip((1.3, 0.7), xs.items(), strict=True)
    sum(wt * ((reference(t, x) - ys[t]) ** 2).mean() for wt, (t, x) in pairs).backward()
    for (name, p), q in zip(net.named_parameters(), reference.parameters(), strict=True):
        assert torch.allclose(p.grad, q.grad, atol=1e-6), name

    # after the update the weights are renormalised to Σ w = T
    with torch.no_grad():
        w.copy_(torch.tensor([1.5, 0.9]))
    weighting.after_step(step)
    assert torch.allclose(w, torch.tensor([1.25, 0.75]))


def test_gradnorm_leaves_the_weights_alone_on_a_one_task_step():
    net = TwoTaskNet()
    weighting = mtl.create("weighting", "gradnorm")
    weighting.setup(types.SimpleNamespace(tasks={"a": None, "b": None}, device=torch.device("cpu")))
    step = gradnorm_step(weighting, net, {"b": torch.ones(3, 3)}, {"b": torch.zeros(3)})
    assert weighting.parameters()[0].grad is None and step.weights == {"b": 1.0}
    assert net.heads["b"].weight.grad is not None and net.heads["a"].weight.grad is None
    with pytest.raises(OptionError, match="alpha"):
        mtl.create("weighting", "gradnorm", alpha=-1)


# ------------------------------------------------------------------------------------------------ end to end
NAMES = ["static", "uw", "dwa", "gls", "imtl-l", "famo", "rlw", "stch", "gradnorm"]
TINY = ["--backbone", "tiny", "--max-steps", "2", "--batch-size", "8", "--max-length", "32", "--limit", "24",
        "--eval-limit", "8", "-q"]
DEMO_TASKS = ["demo-paraphrase", "demo-similarity", "demo-sentiment"]


def test_every_name_is_registered_in_the_loss_family():
    from mtl.contract import loader

    registry = loader.registry()
    for name in NAMES:
        entry, _ = registry.get("weighting", name)
        assert entry.plugin == f"mtl.plugins.weightings.loss.{name.replace('-', '_')}"
        assert entry.load().family == "loss" and entry.description


@pytest.mark.parametrize("name", NAMES)
def test_mtl_run_with_every_loss_weighting_logs_the_task_weights(tmp_path, name):
    result = invoke_cli("run", "--weighting", name, "--sampler", "all", *TINY, "-o", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    training = [r for r in records if "tasks" in r]
    assert len(training) == 2
    for record in training:
        assert sorted(record["tasks"]) == sorted(DEMO_TASKS)
        assert all(math.isfinite(record[f"weight.{t}"]) and record[f"weight.{t}"] > 0 for t in DEMO_TASKS)


def test_famo_with_one_task_per_step_is_a_one_line_error(tmp_path):
    result = invoke_cli("run", "--weighting", "famo", "--sampler", "round-robin", "--target", "demo-paraphrase",
                        "--aux", "demo-sentiment", *TINY, "-o", str(tmp_path / "run"))
    assert_one_line_error(result, "famo", "--sampler all", "step 0 has no batch of demo-")
    assert not (tmp_path / "run").exists()


STATEFUL = ["uw", "dwa", "gradnorm", "famo", "rlw"]


@pytest.mark.parametrize("name", STATEFUL)
@pytest.mark.slow
def test_a_crashed_and_resumed_run_equals_the_uninterrupted_one(tmp_path, monkeypatch, name):
    """6 steps per epoch (3 tasks × 16 examples / 8), 4 epochs: DWA's weights leave 1 in epoch 2; the crash at step 10
    resumes from the checkpoint of step 8."""
    options = {"weighting": name, "sampler": "all", "limit": 16, "eval_limit": 8, "batch_size": 8, "epochs": 4,
               "lr": 1e-2}
    whole_and_crashed(tmp_path, monkeypatch, **options)
    result = Trainer.resuming(tmp_path / "crashed").prepare().train()
    assert result["summary"]["resumed_from"].endswith("step-00000008.safetensors")
    assert run_files(tmp_path / "crashed") == run_files(tmp_path / "whole")
    for name_of_file in ("best.safetensors", "weighting.safetensors"):
        whole = tmp_path / "whole" / "checkpoint" / name_of_file
        if whole.exists():
            assert_same_tensors(whole, tmp_path / "crashed" / "checkpoint" / name_of_file)
    records = [json.loads(line) for line in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    weights = {tuple(r[f"weight.{t}"] for t in DEMO_TASKS) for r in records if "tasks" in r and r["step"] >= 12}
    assert len(weights) > 1 or name == "dwa" and weights != {(1.0, 1.0, 1.0)}  # the weights move


def logged_weights(folder) -> list[tuple[float, ...]]:
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return [tuple(r[f"weight.{t}"] for t in DEMO_TASKS) for r in records if "tasks" in r]


@pytest.mark.parametrize("name", ["uw", "imtl-l", "gradnorm"])
@pytest.mark.slow
def test_option_lr_trains_the_weightings_parameters_at_that_rate(tmp_path, name):
    """At the run's lr (2e-5) the task weights hardly leave their start in 3 steps; at --set NAME.lr=0.05 Adam moves
    each parameter by about 0.05 a step. uw logs ½·e^{−s} (start ½), imtl-l e^{s} (start 1), gradnorm w (start 1,
    renormalised to sum 3: one weight rises as another falls)."""
    steps = ["--max-steps", "3", "--warmup", "0"]
    args = ["run", "--weighting", name, "--sampler", "all", *TINY, *steps]
    assert invoke_cli(*args, "-o", str(tmp_path / "run-lr")).exit_code == 0
    fast = invoke_cli(*args, "--set", f"{name}.lr=0.05", "-o", str(tmp_path / "fast"))
    assert fast.exit_code == 0, fast.output
    start = 0.5 if name == "uw" else 1.0
    slow_moves = [abs(w - start) for w in logged_weights(tmp_path / "run-lr")[-1]]
    fast_moves = [abs(w - start) for w in logged_weights(tmp_path / "fast")[-1]]
    assert max(slow_moves) < 1e-3
    assert max(fast_moves) > 0.02


def test_a_weighting_with_a_parameters_lr_that_is_not_positive_is_a_one_line_error(tmp_path):
    result = invoke_cli("run", "--weighting", "uw", "--set", "uw.lr=-1", "--target", "demo-paraphrase", "--aux",
                        "demo-sentiment", *TINY, "-o", str(tmp_path / "run"))
    assert_one_line_error(result, "weighting 'uw'", "option lr", "must be a positive number (got -1.0)")
    assert not (tmp_path / "run").exists()
