"""--optimizer adamw|adamax: the update each one makes, written out by hand, and the option's errors."""

from __future__ import annotations

import pytest
import torch
from conftest import invoke_cli, run_mtl

from mtl.errors import OptionError
from mtl.runs.config import RunConfig
from mtl.training import optimizer as optim

LR, DECAY, EPS = 0.1, 0.2, 1e-8


def one_step(name: str):
    """A Linear layer, its gradient, and the parameters after one step (no warm-up: the full rate)."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    optimizer, scheduler = optim.build(model, [], lr=LR, weight_decay=DECAY, warmup=0.0, total_steps=10, name=name)
    model(torch.randn(4, 3)).square().sum().backward()
    grads = {k: v.grad.detach().clone() for k, v in model.named_parameters()}
    optimizer.step()
    return before, grads, {k: v.detach() for k, v in model.named_parameters()}, optimizer


def test_adamax_first_step_is_the_infinity_norm_update_with_l2_decay():
    before, grads, after, optimizer = one_step("adamax")
    assert isinstance(optimizer, torch.optim.Adamax)
    # Kingma & Ba 2015 §7.1, step 1: m = (1-β1)g, u = |g| + eps, θ -= lr / (1-β1) · m / u; L2 decay adds wd·θ to g
    g = grads["weight"] + DECAY * before["weight"]
    assert torch.allclose(after["weight"], before["weight"] - LR * g / (g.abs() + EPS), atol=1e-6)
    g = grads["bias"]  # biases are exempt from decay
    assert torch.allclose(after["bias"], before["bias"] - LR * g / (g.abs() + EPS), atol=1e-6)


def test_adamw_first_step_decays_the_weights_apart_from_the_gradient():
    before, grads, after, optimizer = one_step("adamw")
    assert isinstance(optimizer, torch.optim.AdamW)
    g = grads["weight"]  # Adam step 1: m̂ = g, v̂ = g², so θ -= lr·g/(|g|+eps), and θ *= 1 - lr·wd first
    expected = before["weight"] * (1 - LR * DECAY) - LR * g / (g.abs() + EPS)
    assert torch.allclose(after["weight"], expected, atol=1e-6)
    # the two optimizers differ on this step (the test above could not pass for AdamW)
    assert not torch.allclose(one_step("adamax")[2]["weight"], after["weight"], atol=1e-4)


def test_adamw_is_fused_on_the_cpu_and_three_steps_follow_adams_formula():
    """The fused kernel (transformers.Trainer's default optimizer too) makes AdamW's update, written out by hand over
    three steps with bias correction (Loshchilov & Hutter 2019, Algorithm 2) — not only the first, where m̂/√v̂ = ±1."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    optimizer, _ = optim.build(model, [], lr=LR, weight_decay=DECAY, warmup=0.0, total_steps=10, name="adamw")
    assert all(group["fused"] for group in optimizer.param_groups)
    b1, b2 = 0.9, 0.999
    theta = model.weight.detach().clone().double()
    m, v = torch.zeros_like(theta), torch.zeros_like(theta)
    for t in range(1, 4):
        optimizer.zero_grad()
        model(torch.randn(4, 3)).square().sum().backward()
        g = model.weight.grad.detach().double()
        optimizer.step()
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        theta = theta * (1 - LR * DECAY) - LR * (m / (1 - b1 ** t)) / ((v / (1 - b2 ** t)).sqrt() + EPS)
        assert torch.allclose(model.weight.detach().double(), theta, atol=1e-5), t


def test_adamax_keeps_torchs_default_implementation():
    optimizer = one_step("adamax")[3]
    assert not any(group.get("fused") for group in optimizer.param_groups)


def test_an_unknown_optimizer_is_an_option_error(tmp_path):
    with pytest.raises(OptionError, match="--optimizer: expected one of adamw, adamax, got 'sgd'"):
        RunConfig(target="demo-paraphrase", optimizer="sgd").validate()
    result = run_mtl("run", "--backbone", "tiny", "--optimizer", "sgd", "-o", str(tmp_path / "r"), "-q")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ") and all(word in lines[0] for word in ("'--optimizer'", "'sgd'", "'adamax'"))
    assert not (tmp_path / "r").exists()


def test_adamax_trains_through_mtl_run_and_is_recorded(tmp_path):
    import json

    result = invoke_cli("run", "--backbone", "tiny", "--optimizer", "adamax", "--max-steps", "4", "--limit", "32",
                        "--eval-limit", "16", "--max-length", "32", "-o", str(tmp_path / "r"), "-q")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "r" / "config.json").read_text())["optimizer"] == "adamax"


def test_a_weightings_parameters_at_their_own_rate_follow_the_schedule_without_decay():
    """extra_lr: the weighting's parameters get a group of their own; one Adam step moves each by its rate times the
    schedule's factor (the first Adam step is ±lr per element), the model's weights by the run's lr with decay."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    extra = torch.nn.Parameter(torch.tensor([0.5, -0.5]))
    # warm-up over 2 of 4 steps: the first step's factor is (0 + 1) / (2 + 1)
    optimizer, _ = optim.build(model, [extra], lr=LR, weight_decay=DECAY, warmup=0.5, total_steps=4, name="adamw",
                               extra_lr=0.03)
    own = [g for g in optimizer.param_groups if any(p is extra for p in g["params"])]
    assert len(own) == 1 and len(own[0]["params"]) == 1 and own[0]["weight_decay"] == 0.0
    before = extra.detach().clone()
    weight = model.weight.detach().clone()
    (model(torch.randn(4, 3)).square().sum() + (extra * torch.tensor([1.0, -2.0])).sum()).backward()
    optimizer.step()
    assert torch.allclose(extra.detach(), before - 0.03 / 3 * torch.tensor([1.0, -1.0]), atol=1e-7)
    g = model.weight.grad
    expected = weight * (1 - LR / 3 * DECAY) - LR / 3 * g / (g.abs() + EPS)
    assert torch.allclose(model.weight.detach(), expected, atol=1e-6)


def test_without_extra_lr_the_weightings_parameters_share_the_undecayed_group():
    model = torch.nn.Linear(3, 2)
    extra = torch.nn.Parameter(torch.zeros(2))
    optimizer, _ = optim.build(model, [extra], lr=LR, weight_decay=DECAY, warmup=0.0, total_steps=4)
    assert len(optimizer.param_groups) == 2
    group = next(g for g in optimizer.param_groups if any(p is extra for p in g["params"]))
    assert group["lr"] == LR and group["weight_decay"] == 0.0 and any(p is model.bias for p in group["params"])


def test_an_extra_rate_without_extra_parameters_adds_no_group():
    model = torch.nn.Linear(3, 2)
    optimizer, _ = optim.build(model, [], lr=LR, weight_decay=DECAY, warmup=0.0, total_steps=4, extra_lr=0.5)
    assert [g["lr"] for g in optimizer.param_groups] == [LR, LR]
