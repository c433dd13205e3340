"""One optimisation step: the sampler's task(s), ``grad_accum`` micro-batches of each, their losses, the
regularizer's and the weighting's backward on each, then one clipped optimizer step.

Under torchrun every rank trains rank 0's choice of task(s) on its shard of each global micro-batch; the
per-instance losses are scaled by world × (local / global instances), so the gradient DDP averages is the gradient
of the global micro-batch's mean loss. With ``grad_accum`` = K each micro-batch's losses are further scaled by its
share of the step's instances (n_k / Σ n), so that a weighting that takes the mean over the step's instances
(``uniform``, instance weights) gets the gradient of one batch of K × ``batch_size`` (as ``transformers`` divides
the loss by the accumulation steps); a weighting that combines the micro-batches' losses non-linearly sees each
micro-batch as a step of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from mtl.contract.weighting import Step
from mtl.errors import TrainingError
from mtl.training import batches as drawing
from mtl.training import losses as computing


@dataclass
class StepResult:
    """What the loop records of a step: its tasks, their mean instance losses (over the step's global batch; empty
    for a skipped step), the learning rate it used and the number of examples it trained on (global)."""

    names: list[str]
    means: dict[str, float]
    lr: float
    examples: int

    def __iter__(self):  # (names, means, lr, examples), as train_step returned before
        return iter((self.names, self.means, self.lr, self.examples))


def train_step(t, step: int, optimizer, scheduler, scaler=None) -> StepResult:
    """One optimisation step of the run whose parts ``t`` holds (a :class:`mtl.training.trainer.Trainer`)."""
    c, engine, ctx = t.config, t.engine, t.engine.ctx
    progress = step / t.total_steps
    names = drawing.choose(ctx, t.sampler, step, progress, list(t.tasks))
    micros, totals = [], []
    for _ in range(c.grad_accum):
        micro, total = drawing.draw(ctx, names, t.streams, t.train_data, engine.device)
        micros.append(micro)
        totals.append(total)
    if t.events.listening_step_begin:
        t.events.step_begin(batches=micros[0].batches, model=t.model, optimizer=optimizer)
    lr = optimizer.param_groups[0]["lr"]  # the rate this step uses
    examples, scale = sum(totals), engine.loss_scale(scaler)
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for micro, total in zip(micros, totals, strict=False):
        what = _backward(t, step, micro, total / examples, scale)
        if isinstance(what, str):
            return _nonfinite(t, step, what, optimizer, scheduler, names, lr)
        for name, (mean, count) in what.items():
            sums[name] = sums.get(name, 0.0) + mean * count
            counts[name] = counts.get(name, 0.0) + count
    if not engine.finish_gradients(t.model, t.weighting, optimizer, scaler, scale, c.clip):
        return _nonfinite(t, step, "+".join(names) + "|gradient", optimizer, scheduler, names, lr)
    engine.optimizer_step(optimizer, scaler)
    if t.regularizer is not None:
        t.regularizer.after_step()
    if hasattr(t.weighting, "after_step"):  # a duck-typed plugin without the base class may lack it
        last = t.last_step
        last.recompute_fn = lambda: _losses_after_update(t, micros)
        t.weighting.after_step(last)
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return StepResult(names, {n: sums[n] / counts[n] for n in sums}, lr, examples)


def _backward(t, step: int, micro, share: float, scale: float):
    """The regularizer's and the weighting's backward on one micro-batch (``share``: its part of the step's
    instances); per task (mean loss, global instances), or ``"task|what"`` when something is not finite."""
    c, engine, ctx = t.config, t.engine, t.engine.ctx
    computed = computing.compute(t.forward, micro, t.tasks, t.events.loss_hooks, engine.autocast)
    agreed = computing.agree(ctx, computed.losses, micro.split)
    if agreed.bad is not None:
        return f"{agreed.bad}|loss"
    losses = computed.losses
    factor = share * (ctx.world * agreed.local / agreed.total if micro.split else 1.0)
    if factor != 1.0:
        losses = {n: value * factor for n, value in losses.items()}
    weighting_step = Step(losses=engine.hand_over(losses, scale), features=computed.features, target=c.target,
                          index=step, epoch=step // t.steps_per_epoch, progress=step / t.total_steps,
                          shared_parameters=[p for p in t.model.backbone.parameters() if p.requires_grad],
                          hidden_states=engine.hand_over(computed.hidden, scale), batches=micro.batches,
                          logits=engine.hand_over(computed.outputs, scale), global_means=agreed.means,
                          reduce_fn=ctx.mean if ctx.enabled else None)
    weighting_step._loss_scale = scale
    if t.regularizer is not None:  # its gradient first (graph kept), then the weighting's adds to it
        plain = Step(losses=losses, features=computed.features, target=c.target, index=step,
                     epoch=weighting_step.epoch, progress=weighting_step.progress,
                     shared_parameters=weighting_step.shared_parameters, hidden_states=computed.hidden,
                     batches=micro.batches, logits=computed.outputs, global_means=agreed.means,
                     reduce_fn=weighting_step.reduce_fn)
        with engine.autocast():
            term = t.regularizer.loss(plain)  # a term of the plain outputs, scaled as a whole
        if term is not None:
            if not bool(term.isfinite()):
                return f"{'+'.join(losses)}|{c.regularizer} term"
            engine.backward(term * share if share != 1.0 else term, scale, retain_graph=True)
    t.run.gather_fn = ctx.gather if micro.split else None
    try:
        t.weighting.backward(weighting_step)
    finally:
        t.run.gather_fn = None
    t.last_weights = weighting_step.weights
    t.last_step = weighting_step
    return {n: (agreed.means[n], float(value.numel())) for n, value in losses.items()}


def _losses_after_update(t, micros) -> dict:
    """Each task's mean loss over the step's micro-batches under the updated model."""
    hooks, engine = t.events.loss_hooks, t.engine
    if len(micros) == 1:
        return computing.after_update(t.forward, micros[0], t.tasks, hooks, engine.autocast, engine.ctx)
    total: dict = {}
    weight: dict = {}
    for micro in micros:
        for name, value in computing.after_update(t.forward, micro, t.tasks, hooks, engine.autocast,
                                                  engine.ctx).items():
            n = len(micro.rows[name])
            total[name] = total.get(name, 0.0) + value * n
            weight[name] = weight.get(name, 0) + n
    return {name: total[name] / weight[name] for name in total}


def _nonfinite(t, step: int, what: str, optimizer, scheduler, names, lr) -> StepResult:
    """Stop with an error naming the step, task and last checkpoint; or skip the step (--skip-nonfinite)."""
    task, _, kind = what.partition("|")
    optimizer.zero_grad(set_to_none=True)
    if not t.config.skip_nonfinite:
        where = (f"last checkpoint {t.last_checkpoint} (continue with `{t.RESUME_COMMAND} {t.output}`)"
                 if t.last_checkpoint else "no checkpoint written yet")
        raise TrainingError(f"non-finite {kind} at step {step} on task {task!r} (weighting "
                            f"{t.config.weighting!r}); {where}; lower --lr, check the data and the weighting, "
                            f"or pass --skip-nonfinite")
    t.loop.skipped += 1
    scheduler.step()  # the schedule stays aligned with the step count
    return StepResult(names, {}, lr, 0)
