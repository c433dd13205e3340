"""Crash-safe checkpoints: :class:`Checkpointing` decides when (every ``--checkpoint-every`` steps and at every
epoch end), :func:`save` writes everything :func:`restore` needs to continue exactly there (rank 0 writes it)."""

from __future__ import annotations

from typing import Any

import torch

from mtl.contract.callback import Callback
from mtl.errors import MtlError
from mtl.training import rng
from mtl.training.state import LoopState


class Checkpointing(Callback):
    """Asks for a checkpoint every ``every`` steps (None: epoch ends only), at every epoch end and at the last step."""

    def __init__(self, every: int | None) -> None:
        self.every = every

    def on_step_end(self, state, control, **kwargs: Any) -> None:
        step = state.step
        if (step % state.steps_per_epoch == 0 or step == state.max_steps
                or (self.every and step % self.every == 0)):
            control.should_save = True


def model_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of the model's weights (safetensors refuses tensors that share memory)."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def save(t, optimizer, scheduler, scaler) -> None:
    """Write the checkpoint of ``t.loop.step`` (``t``: the trainer's parts)."""
    ctx = t.engine.ctx
    rng_states = ctx.objects(rng.capture())  # every rank's own generators (dropout differs per rank)
    if not ctx.is_main:
        t.last_checkpoint = t.folder.checkpoints  # for the error message only
        return
    t.loop.metrics_bytes = t.folder.metrics_size()
    state = {
        "format": 1,
        "world_size": ctx.world,
        "model": model_state(t.model),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else {},
        "sampler": t.sampler.state_dict(),
        "weighting": t.weighting.state_dict(),
        "regularizer": t.regularizer.state_dict() if t.regularizer is not None else {},
        "weighting_parameters": [p.detach().cpu().clone() for p in t.weighting.parameters()],
        "streams": {name: stream.state_dict() for name, stream in t.streams.items()},
        "run_rng": t.run.rng.get_state(),
        "rng": rng_states,
        "loop": t.loop.to_dict(),
        "callbacks": t.events.state_dict(),
    }
    t.last_checkpoint = t.folder.save_checkpoint(t.loop.step, state)


def restore(t, state: dict[str, Any], optimizer, scheduler, scaler) -> LoopState:
    """Put the run back where ``state`` was written; the loop state it holds."""
    ctx = t.engine.ctx
    if state.get("world_size", 1) != ctx.world:
        raise MtlError(f"{t.last_checkpoint}: written by {state.get('world_size')} process(es); resume it with "
                       f"the same number (this is {ctx.world})")
    t.model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state["scaler"]:
        scaler.load_state_dict(state["scaler"])
    t.sampler.load_state_dict(state["sampler"])
    t.weighting.load_state_dict(state["weighting"])
    if t.regularizer is not None:
        t.regularizer.load_state_dict(state.get("regularizer") or {})
    with torch.no_grad():
        for p, saved in zip(t.weighting.parameters(), state["weighting_parameters"], strict=False):
            p.copy_(saved)
    for name, stream in t.streams.items():
        stream.load_state_dict(state["streams"][name])
    t.run.rng.set_state(state["run_rng"])
    rng.restore(state["rng"][ctx.rank])
    t.events.load_state_dict(state.get("callbacks") or {})
    return LoopState.from_dict(state["loop"])
