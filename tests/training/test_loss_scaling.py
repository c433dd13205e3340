"""fp16's loss scaling is invisible to weightings: a step with a grad scaler makes the same update as without.

The trainer uses ``torch.amp.GradScaler("cuda")`` for ``--precision fp16``; here a CPU scaler with a power-of-two
scale is handed to ``train_step`` directly (fp32 arithmetic, so multiplying and dividing by the scale is exact up to
rounding and nothing overflows). Before the fix the weighting saw S·L: uncertainty weighting's log-variances, FAMO's
log-losses, GradNorm's gradient norms and Nash-MTL's solution (homogeneous of degree 0 in the gradients) moved the
model and their own parameters differently from the unscaled step.
"""

from __future__ import annotations

import pytest
import torch

from mtl.runs.config import RunConfig
from mtl.training.scaling import scale_gradient
from mtl.training.trainer import Trainer

SCALE = 2.0 ** 12


def test_scale_gradient_is_the_identity_forward_and_scales_the_backward():
    x = torch.tensor([1.5, -2.0], requires_grad=True)
    y = scale_gradient(x, 8.0)
    assert torch.equal(y, x)
    (y * torch.tensor([3.0, 5.0])).sum().backward()
    assert torch.equal(x.grad, torch.tensor([24.0, 40.0]))  # 8 × (3, 5)
    assert scale_gradient(x, 1.0) is x


def train(tmp_path, weighting: str, scaler, steps: int = 3):
    config = RunConfig(target="demo-paraphrase", aux=["demo-similarity", "demo-sentiment"], backbone="tiny",
                       batch_size=8, max_length=32, limit=32, eval_limit=16, max_steps=steps, seed=3, dropout=0.0,
                       lr=1e-3, sampler="all", weighting=weighting,
                       output=str(tmp_path / f"{weighting}-{scaler is not None}"))
    trainer = Trainer(config).prepare()
    trainer.model.eval()  # no dropout: the two runs draw the same numbers anyway, but be sure
    optimizer, scheduler = trainer._optimizer()
    weights = []
    for step in range(steps):
        trainer.train_step(step, optimizer, scheduler, scaler)
        weights.append(dict(trainer.last_weights))
    params = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}
    own = [p.detach().clone() for p in trainer.weighting.parameters()]
    return params, own, weights, trainer.weighting.log()


@pytest.mark.parametrize("weighting", ["uw", "famo", "gradnorm", "nash-mtl", "dwa", "mamt"])
@pytest.mark.slow
def test_a_step_with_a_grad_scaler_updates_as_without(tmp_path, weighting):
    scaler = torch.amp.GradScaler("cpu", init_scale=SCALE, growth_interval=10**6)
    plain = train(tmp_path, weighting, None)
    scaled = train(tmp_path, weighting, scaler)
    assert scaler.get_scale() == SCALE  # no step overflowed (and none was skipped)
    params, own, weights, logged = plain
    params_s, own_s, weights_s, logged_s = scaled
    moved = max(float((params[n] - p).abs().max()) for n, p in params_s.items())
    assert moved < 1e-5, f"{weighting}: parameters differ by {moved} with a grad scaler"
    for a, b in zip(own, own_s, strict=True):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)
    for a, b in zip(weights, weights_s, strict=True):
        assert a.keys() == b.keys()
        for task in a:
            assert b[task] == pytest.approx(a[task], rel=1e-4, abs=1e-6), f"{weighting}: weight of {task}"
    for key, value in logged.items():
        assert logged_s[key] == pytest.approx(value, rel=1e-4, abs=1e-6), f"{weighting}: {key}"


def test_the_step_hands_plugins_true_gradients_under_a_loss_scale():
    """What the engine does under fp16, on CPU: the weighting's inputs pass S-times gradients back; Step.gradients and
    Step.jacobian divide S out, Step.accumulate puts it back on what reaches the model."""
    from mtl.contract.weighting import Step
    from mtl.training.engine import Engine

    x = torch.tensor([1.0, 2.0], requires_grad=True)
    handed = Engine.hand_over({"a": x * torch.tensor([3.0, 5.0]), "b": x.square()}, 8.0)
    step = Step(losses=handed, features={}, target="a", index=0, epoch=0, progress=0.0)
    step._loss_scale = 8.0
    (grad,) = step.gradients(handed["a"].sum(), [x], retain_graph=True)
    assert torch.equal(grad, torch.tensor([3.0, 5.0]))  # d/dx Σ(3x₀, 5x₁), not 8 times it
    (jacobian,) = step.jacobian([handed["a"].sum(), handed["b"].sum()], [x])
    assert torch.equal(jacobian, torch.tensor([[3.0, 5.0], [2.0, 4.0]]))  # rows: the objectives; 2x for Σx²
    parameter = torch.nn.Parameter(torch.zeros(2))
    step.accumulate(parameter, torch.tensor([1.0, -1.0]))
    assert torch.equal(parameter.grad, torch.tensor([8.0, -8.0]))  # scaled like every gradient the scaler unscales
    plain = Step(losses={"a": x * 3.0}, features={}, target="a", index=0, epoch=0, progress=0.0)
    assert torch.equal(plain.gradients((x * 3.0).sum(), [x])[0], torch.tensor([3.0, 3.0]))  # no scale: autograd's
