"""Weighting ``pcgrad``: projecting conflicting gradients (Yu et al., "Gradient Surgery for Multi-Task
Learning", NeurIPS 2020, Algorithm 1).

For each task i its gradient g_i on the shared (backbone) parameters is computed from its mean loss; then
g_i^PC = g_i and, for every other task j in a random order, if g_i^PC · g_j < 0 (a conflict) g_i^PC is
projected onto the normal plane of the original g_j: g_i^PC ← g_i^PC − (g_i^PC · g_j / ‖g_j‖²) g_j. The
shared parameters get Σ_i g_i^PC; task-specific parameters (heads) get the gradient of Σ_i L_i. Use it with
the ``all`` sampler (every task each step); with one task per step it is plain back-propagation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from mtl import Weighting, hookimpl

if TYPE_CHECKING:
    import torch


def project(grads: "list[torch.Tensor]", orders: Sequence[Sequence[int]] | None = None) -> "list[torch.Tensor]":
    """PCGrad's projection (Alg. 1) of flat per-task gradients; ``orders[i]`` is the order in which task i
    visits the other tasks (indices; i itself is skipped; default: index order). Returns new tensors."""
    out = []
    for i, g in enumerate(grads):
        g = g.clone()
        for j in orders[i] if orders is not None else range(len(grads)):
            if j == i:
                continue
            dot = g.dot(grads[j])
            if dot < 0:
                g = g - (dot / grads[j].dot(grads[j])) * grads[j]
        out.append(g)
    return out


def conflicts(grads: "list[torch.Tensor]") -> int:
    """The number of task pairs whose original gradients conflict (negative inner product)."""
    return sum(int(grads[i].dot(grads[j]) < 0) for i in range(len(grads)) for j in range(i + 1, len(grads)))


class PCGrad(Weighting):
    supports_distributed = False  # it projects per-task gradients with autograd.grad, outside DDP's reduction

    def __init__(self) -> None:
        super().__init__()
        self.model = None
        self.rng = None
        self.conflicts = 0

    def setup(self, run) -> None:
        self.model = run.model
        self.rng = run.rng

    def loss(self, step):
        """Σ_t mean(ℓ_t): the objective whose shared-parameter gradient PCGrad replaces with Σ_t g_t^PC."""
        step.record_weights({task: 1.0 for task in step.losses})
        return sum(losses.mean() for losses in step.losses.values())

    def orders(self, n: int) -> list[list[int]]:
        """For each task, a random order of the tasks (from the run's generator)."""
        import torch

        return [torch.randperm(n, generator=self.rng).tolist() for _ in range(n)]

    def backward(self, step) -> None:
        import torch

        tasks = list(step.losses)
        step.record_weights({task: 1.0 for task in tasks})
        shared = [p for p in step.shared_parameters if p.requires_grad]
        shared_ids = {id(p) for p in shared}
        model_parameters = self.model.parameters() if self.model is not None else []
        specific = [p for p in model_parameters if p.requires_grad and id(p) not in shared_ids]
        params = shared + specific
        per_task = []
        for k, task in enumerate(tasks):
            per_task.append(torch.autograd.grad(step.losses[task].mean(), params, retain_graph=k + 1 < len(tasks),
                                                allow_unused=True))

        # shared parameters: flatten each task's gradient (zeros where it does not reach), project, sum;
        # a parameter no task reaches keeps no gradient, as with plain back-propagation
        used = [(n, p) for n, p in enumerate(shared) if any(g[n] is not None for g in per_task)]
        self.conflicts = 0
        if used:
            flat = [torch.cat([(g[n] if g[n] is not None else torch.zeros_like(p)).reshape(-1) for n, p in used])
                    for g in per_task]
            self.conflicts = conflicts(flat)
            total = torch.stack(project(flat, self.orders(len(tasks)) if len(tasks) > 1 else None)).sum(dim=0)
            offset = 0
            for _, p in used:
                grad = total[offset:offset + p.numel()].view_as(p)
                offset += p.numel()
                p.grad = grad.clone() if p.grad is None else p.grad + grad

        # task-specific parameters: the plain gradient of the sum of task losses
        for n, p in enumerate(specific, start=len(shared)):
            grads = [g[n] for g in per_task if g[n] is not None]
            if grads:
                grad = torch.stack(grads).sum(dim=0) if len(grads) > 1 else grads[0]
                p.grad = grad.clone() if p.grad is None else p.grad + grad

    def log(self) -> dict[str, float]:
        return {**super().log(), "pcgrad.conflicts": float(self.conflicts)}


@hookimpl
def register_weightings(register):
    register("pcgrad", PCGrad,
             description="gradient surgery: project conflicting task gradients (Yu et al., NeurIPS 2020)")
