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
