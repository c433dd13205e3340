"""A lookahead step: what the run's optimizer would do to some parameters given other gradients, taken on a copy
of its state and undone afterwards (TAG's lookahead update, :mod:`mtl.study.affinity`), with the dropout masks held
fixed and the gradients clipped as a training step clips them."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Sequence

import torch


@contextlib.contextmanager
def fixed_dropout(seed: int, devices: Sequence[int] = ()):
    """Run the block with the global generators seeded with ``seed`` (the same dropout masks each time), then put
    them back as they were."""
    with torch.random.fork_rng(devices=list(devices)):
        torch.manual_seed(seed)
        yield


def clipped(grads: Sequence[torch.Tensor | None], max_norm: float) -> list[torch.Tensor | None]:
    """``grads`` scaled as :func:`torch.nn.utils.clip_grad_norm_` scales them (``max_norm`` <= 0: unchanged)."""
    present = [g for g in grads if g is not None]
    if max_norm <= 0 or not present:
        return list(grads)
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in present]))
    factor = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    return [None if g is None else g * factor.to(g.dtype) for g in grads]


def optimizer_step_on_copy(optimizer: torch.optim.Optimizer, params: Sequence[torch.nn.Parameter],
                           grads: Sequence[torch.Tensor | None]) -> None:
    """Apply to ``params`` (in place) the step ``optimizer`` would take with gradients ``grads``, using an optimizer
    of its class with the same per-group hyperparameters (the learning rate as it is now) and a copy of the
    parameters' state; ``optimizer`` and its state are not touched. A ``None`` gradient leaves its parameter as the
    optimizer would (skipped)."""
    wanted = {id(p) for p in params}
    groups = []
    for group in optimizer.param_groups:
        mine = [p for p in group["params"] if id(p) in wanted]
        if mine:
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": mine})
    missing = wanted - {id(p) for g in groups for p in g["params"]}
    if missing:
        raise ValueError(f"{len(missing)} shared parameter(s) are not trained by the optimizer")
    lookahead = type(optimizer)(groups)
    for p in params:
        if p in optimizer.state:
            lookahead.state[p] = {k: v.clone() if torch.is_tensor(v) else copy.deepcopy(v)
                                  for k, v in optimizer.state[p].items()}
    kept = [p.grad for p in params]
    try:
        for p, g in zip(params, grads, strict=False):
            p.grad = None if g is None else g.to(p.dtype)
        lookahead.step()
    finally:
        for p, g in zip(params, kept, strict=False):
            p.grad = g
