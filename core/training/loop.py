"""The training loop: drives the optimisation steps and sends the run's callbacks its events (train begin, step
begin/end, log, evaluate, save, train end), acting on what they ask through the control (evaluate, save, stop).

``t`` is the run's parts (a :class:`mtl.training.trainer.Trainer`): its model, data, plugins, engine and folder.
"""

from __future__ import annotations

import time
from typing import Any

from mtl.runs import signals
from mtl.training import checkpoint, evaluation, outcome
from mtl.training.progress import Progress
from mtl.training.state import LoopState


def train(t) -> dict[str, Any]:
    """Train ``t`` from its first step (or its last checkpoint) to the end or a callback's stop; the outcome."""
    optimizer, scheduler = t._optimizer()
    scaler = t.engine.new_scaler()
    t.model.train()
    start(t, optimizer, scheduler, scaler)
    loop, events = t.loop, t.events
    state, control = events.state, events.control
    spe, total = t.steps_per_epoch, t.total_steps
    state._update(max_steps=total, steps_per_epoch=spe, run_folder=t.output, is_main=t.engine.ctx.is_main,
                  step=loop.step, epoch=loop.step // spe, best_value=loop.best_value, best_step=loop.best_step + 1,
                  evaluations=len(loop.history))
    events.fire("on_train_begin", resumed=t.resume, run=t.run, engine=t.engine, weighting=t.weighting, model=t.model)
    bar = Progress(total, enabled=t.progress and t.engine.ctx.is_main)
    started = time.perf_counter()
    with bar:
        bar.update(loop.step, {})
        for step in range(loop.step, total):
            signals.check()  # a SIGTERM whose exception a finaliser swallowed
            state._update(step=step, epoch=step // spe)
            result = train_and_log(t, step, optimizer, scheduler, scaler, bar)
            state._update(step=step + 1)
            if events.listening_step_end:
                events.step_end(losses=result.means)
            if control.should_evaluate:
                control.should_evaluate = False
                evaluate(t, step, bar)
            if control.should_save:
                control.should_save = False
                loop.step = step + 1
                events.fire("on_save")  # first: what the callbacks do here is part of the checkpoint
                checkpoint.save(t, optimizer, scheduler, scaler)
            if control.should_stop:
                loop.step = step + 1
                break
    return outcome.finish(t, time.perf_counter() - started)


def start(t, optimizer, scheduler, scaler) -> None:
    """A new run writes config.json and an empty metrics.jsonl; a resumed one loads its last checkpoint."""
    if t.resume:
        state, t.last_checkpoint = t.folder.load_checkpoint()
        t.resumed_from = t.last_checkpoint
        t.loop = checkpoint.restore(t, state, optimizer, scheduler, scaler)
        if t.engine.ctx.is_main:  # records written after that checkpoint are written again
            t.folder.truncate_metrics(t.loop.metrics_bytes)
    else:
        t.loop = LoopState()
        if t.engine.ctx.is_main:
            t.folder.write_config(t.config_record())
            t.folder.start_metrics()


def train_and_log(t, step: int, optimizer, scheduler, scaler, bar: Progress):
    """One step, its time and losses added to the loop state, and a metrics record every --log-every steps."""
    loop, tick = t.loop, time.perf_counter()
    result = t.train_step(step, optimizer, scheduler, scaler)
    names, losses, lr, count = result
    loop.examples += count
    loop.add_losses(losses)
    loop.train_seconds += time.perf_counter() - tick
    bar.update(step + 1, {n: v[-1] for n, v in loop.pending.items()})
    if step % t.config.log_every == 0 or step + 1 == t.total_steps:
        c, sources = t.config, {}  # key -> the plugin that logged it
        record: dict[str, Any] = {"step": step, "epoch": step // t.steps_per_epoch, "tasks": names}
        record.update({f"loss.{n}": v for n, v in loop.take_losses().items()})
        record.update(logged(sources, f"sampler {c.sampler!r}",
                             {f"p.{n}": p for n, p in t.sampler.probabilities(step / t.total_steps).items()}))
        record["lr"] = lr
        weighting = f"weighting {c.weighting!r}"
        record.update(logged(sources, weighting, {f"weight.{task}": value for task, value in t.last_weights.items()}))
        record.update(logged(sources, weighting, t.weighting.log()))
        if t.regularizer is not None:
            record.update(logged(sources, f"regularizer {c.regularizer!r}", t.regularizer.log()))
        if loop.skipped:
            record["nonfinite.skipped"] = loop.skipped
        log(t, record, sources)
    return result


def logged(sources: dict[str, str], who: str, values: dict[str, Any]) -> dict[str, Any]:
    """``values``, their keys noted in ``sources`` as logged by ``who``."""
    sources.update(dict.fromkeys(values, who))
    return values


def log(t, record: dict[str, Any], sources: dict[str, str] | None = None) -> None:
    """A record of metrics.jsonl (rank 0; a NaN or infinity written as null and counted under who logged it, see
    ``sources``), and the ``on_log`` event."""
    if t.engine.ctx.is_main:
        t.loop.count_non_finite(t.folder.append_metrics(record), sources or {})
        t.events.fire("on_log", logs=record)


def evaluate(t, step: int, bar: Progress) -> None:
    """Evaluate after ``step``, record the metrics, keep the model when it is the best so far, send ``on_evaluate``."""
    loop, epoch = t.loop, step // t.steps_per_epoch
    tick = time.perf_counter()
    results = t.evaluate()
    loop.eval_seconds += time.perf_counter() - tick
    value = evaluation.selection_value(t.config, t.tasks, results)
    loop.history.append({"epoch": epoch, "step": step, "value": value})
    metrics = evaluation.flat(results)
    log(t, {"step": step, "epoch": epoch, **metrics})
    bar.note(epoch, results, t.config.target)
    if loop.is_best(value):
        loop.keep_best(value, results, epoch, step)
        if t.engine.ctx.is_main:
            t.folder.save_best(checkpoint.model_state(t.model), t.weighting.state_dict())
            # the predictions eval.json's metrics come from (kept, like best.safetensors, for --resume)
            t.folder.write_predictions(t.last_predictions, epoch=epoch, step=step)
    t.events.state._update(metrics=metrics, best_value=loop.best_value, best_step=loop.best_step + 1,
                           evaluations=len(loop.history))
    t.events.fire("on_evaluate", metrics=results, value=value)
