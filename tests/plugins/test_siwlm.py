"""The SIWLM weighting (Son et al. 2021): the schedule of every step of a real run, the loss, bad options."""

from __future__ import annotations

import json
import math
import types

import pytest
import torch
from conftest import TINY_RUN, assert_one_line_error, invoke_cli
from helpers.runs import DEMO

import mtl
from mtl import Step
from mtl.errors import MtlError
from mtl.runs.config import RunConfig
from mtl.training.trainer import Trainer

ORDER = ["demo-paraphrase", "demo-similarity", "demo-sentiment"]  # the target first, then --aux in order


def expected_weight(task, step, steps_per_epoch, initial, period, damp):
    """The schedule of DESIGN.md "siwlm", written out independently of the plugin."""
    epoch = step // steps_per_epoch
    if epoch % 2 == 0:  # SWL: the focus moves through the tasks every `period` steps of the epoch
        focus = ORDER[((step - epoch * steps_per_epoch) // period) % len(ORDER)]
    else:  # IWL: the central task
        focus = "demo-paraphrase"
    return initial[task] * (1.0 if task == focus else damp)


@pytest.mark.slow
def test_every_step_of_a_three_epoch_run_has_the_schedules_weight(tmp_path):
    options = {"period": 4, "damp": 0.2, "weights": {"demo-sentiment": 2.5}}
    config = RunConfig(**DEMO, backbone="tiny", weighting="siwlm", options={"siwlm": options}, epochs=3,
                       batch_size=16, max_length=32, limit=288, eval_limit=32, lr=1e-3, log_every=1, seed=0,
                       output=str(tmp_path / "run"))
    Trainer(config).train()
    run = tmp_path / "run"
    sizes = {"demo-paraphrase": 64, "demo-similarity": 288, "demo-sentiment": 96}  # the demo files, --limit 288
    steps_per_epoch = sum(math.ceil(size / 16) for size in sizes.values())
    assert json.loads((run / "config.json").read_text())["steps_per_epoch"] == steps_per_epoch == 28
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    records = [r for r in records if "tasks" in r]
    assert [r["step"] for r in records] == list(range(3 * steps_per_epoch))
    initial = {"demo-paraphrase": 6.0, "demo-similarity": 1.0, "demo-sentiment": 2.5}
    focused = set()
    for r in records:
        (task,) = r["tasks"]
        weight = expected_weight(task, r["step"], steps_per_epoch, initial, period=4, damp=0.2)
        assert r[f"weight.{task}"] == pytest.approx(weight), r
        assert r["epoch"] == r["step"] // steps_per_epoch
        if weight == initial[task]:
            focused.add((r["epoch"], task))
    # the focus visits every task in the SWL epochs (0, 2) and stays on the target in the IWL epoch (1);
    # 28 steps are 7 periods of 4, so epoch 2 (from step 56) only matches if its count restarts at 0
    assert {t for e, t in focused if e in (0, 2)} == set(ORDER)
    assert {t for e, t in focused if e == 1} == {"demo-paraphrase"}


def fake_run(target="demo-paraphrase", steps_per_epoch=10):
    return types.SimpleNamespace(target=target, tasks={name: None for name in ORDER},
                                 steps_per_epoch=steps_per_epoch)


def test_default_weights_and_the_focus_wrapping_around():
    w = mtl.create("weighting", "siwlm", period=2)
    w.setup(fake_run(steps_per_epoch=10))
    assert w.initial == {"demo-paraphrase": 6.0, "demo-similarity": 1.0, "demo-sentiment": 1.0}
    # epoch 0, i = 0..9: focus paraphrase, similarity, sentiment, paraphrase, similarity (i // 2 mod 3)
    assert [w.focus_task(i, 0) for i in range(0, 10, 2)] == ORDER + ORDER[:2]
    assert [w.focus_task(i, 1) for i in range(10, 20)] == ["demo-paraphrase"] * 10
    # epoch 2 restarts the count: i = index - 2 * 10
    assert [w.focus_task(i, 2) for i in (20, 22, 24, 26)] == ORDER + ORDER[:1]
    assert w.weight("demo-similarity", 2, 0) == 1.0 and w.weight("demo-paraphrase", 2, 0) == pytest.approx(0.6)
    assert w.weight("demo-sentiment", 11, 1) == pytest.approx(0.1) and w.weight("demo-paraphrase", 11, 1) == 6.0


def test_loss_is_the_weighted_mean_of_instance_losses():
    w = mtl.create("weighting", "siwlm", weights={"demo-similarity": 2.0}, period=3, damp=0.5)
    w.setup(fake_run(steps_per_epoch=10))
    a = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = torch.tensor([4.0, 8.0], requires_grad=True)
    # step 3 of epoch 0: focus demo-similarity (3 // 3 = 1): similarity 2 × 1, paraphrase 6 × 0.5
    step = Step(losses={"demo-paraphrase": a, "demo-similarity": b}, features={}, target="demo-paraphrase",
                index=3, epoch=0, progress=0.1)
    loss = w.loss(step)
    assert float(loss.detach()) == pytest.approx((3.0 * (1 + 2 + 3) + 2.0 * (4 + 8)) / 5)
    loss.backward()
    assert torch.allclose(a.grad, torch.full((3,), 3.0 / 5)) and torch.allclose(b.grad, torch.full((2,), 2.0 / 5))
    assert step.weights == {"demo-paraphrase": 3.0, "demo-similarity": 2.0}  # logged as weight.<task>
    single = Step(losses={"demo-sentiment": a.detach()}, features={}, target="demo-paraphrase", index=3, epoch=0,
                  progress=0.1)
    assert float(w.loss(single)) == pytest.approx(0.5 * 2.0)  # weight × mean loss


def test_needs_a_target_and_known_tasks():
    w = mtl.create("weighting", "siwlm")
    with pytest.raises(MtlError, match=r"weighting 'siwlm' needs a --target \(the central task\)"):
        w.setup(fake_run(target=None))
    w = mtl.create("weighting", "siwlm", weights="demo-sentimnt:2")
    with pytest.raises(MtlError) as info:
        w.setup(fake_run())
    assert str(info.value) == ("weighting 'siwlm': option 'weights' names task 'demo-sentimnt', which is not in "
                               "this run. Did you mean 'demo-sentiment'? Tasks of this run: demo-paraphrase, "
                               "demo-similarity, demo-sentiment")


@pytest.mark.parametrize("options, message", [
    ({"period": 0}, "period must be >= 1 (got 0)"),
    ({"damp": -0.1}, "damp must be >= 0 (got -0.1)"),
    ({"weights": "demo-paraphrase:-1"}, "the weight of 'demo-paraphrase' must be >= 0 (got -1.0)"),
    ({"weights": "demo-paraphrase:high"},
     "option 'weights': expected a number, got 'high'"),
])
def test_bad_options_are_errors_naming_the_plugin(options, message):
    with pytest.raises(MtlError) as info:
        mtl.create("weighting", "siwlm", **options)
    assert str(info.value).startswith("weighting 'siwlm': ") and message in str(info.value)


def test_weights_naming_a_task_not_in_the_run_through_the_cli(tmp_path):
    out = tmp_path / "run"
    result = invoke_cli("run", *TINY_RUN, "-o", str(out), "--weighting", "siwlm", "--set", "siwlm.weights=nope:2")
    line = assert_one_line_error(result, "Error: weighting 'siwlm': option 'weights' names task 'nope'")
    assert "demo-paraphrase, demo-similarity, demo-sentiment" in line
    assert not out.exists()
