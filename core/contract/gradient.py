"""Gradient methods of the plugin contract: a weighting that combines the tasks' gradients, not their losses.

Each task of the step contributes one objective, its mean instance loss; :class:`GradientWeighting` computes the
Jacobian of these objectives with respect to the shared (backbone) parameters with TorchJD's Jacobian engine
(``torchjd.autojac.jac``, Quinton & Rey, "Jacobian Descent for Multi-Objective Optimization", arXiv 2406.16232),
averages it over the ranks of a torchrun job, and asks :meth:`GradientWeighting.aggregate` for the update direction
(one row per task in, one vector out). Task-specific parameters (heads) get the gradient of the sum of the
objectives, which is each head's own task's gradient. Use such a weighting with the ``all`` sampler: with one task
per step the Jacobian has one row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mtl.contract.weighting import Step, Weighting

if TYPE_CHECKING:
    import torch


class GradientWeighting(Weighting):
    """Base class of gradient methods: override :meth:`aggregate` (``[T, P] -> [P]``)."""

    family = "gradient"
    computes_gradients = True

    def __init__(self) -> None:
        super().__init__()
        self.model = None

    def setup(self, run) -> None:
        self.model = run.model

    def aggregate(self, jacobian: torch.Tensor, tasks: list, step: Step) -> torch.Tensor:
        """The update direction of the shared parameters from the Jacobian (row t: the gradient of objective
        ``tasks[t]`` — by default task ``tasks[t]``'s mean loss —, flattened over the shared parameters; averaged
        over ranks). Record the weights applied with
        ``step.record_weights`` where the method has them."""
        raise NotImplementedError

    def objectives(self, step: Step) -> dict[Any, torch.Tensor]:
        """The scalar objectives whose Jacobian is aggregated, by key (the keys come to :meth:`aggregate` as its
        ``tasks``, in this order): each task's mean instance loss. Override it to differentiate other objectives of
        the step's losses, e.g. log-transformed losses or each task's batch halves."""
        return {task: losses.mean() for task, losses in step.losses.items()}

    def loss(self, step: Step) -> torch.Tensor:
        """Σ_t mean(ℓ_t): the objective whose shared-parameter gradient the aggregation replaces."""
        return sum(step.task_losses().values())

    def backward(self, step: Step) -> None:
        import torch

        named = self.objectives(step)
        tasks, objectives = list(named), list(named.values())
        shared = [p for p in step.shared_parameters if p.requires_grad]
        shared_ids = {id(p) for p in shared}
        model_parameters = self.model.parameters() if self.model is not None else []
        specific = [p for p in model_parameters if p.requires_grad and id(p) not in shared_ids]
        reached = _reached(objectives, shared + specific)
        shared = [p for p in shared if id(p) in reached]
        specific = [p for p in specific if id(p) in reached]
        jacobians = step.jacobian(objectives, shared + specific)  # true gradients, whatever the precision

        if shared:
            matrix = step.reduce(torch.cat([j.reshape(len(tasks), -1) for j in jacobians[:len(shared)]], dim=1))
            if bool(torch.isfinite(matrix).all()):
                direction = self.aggregate(matrix, tasks, step)
            else:  # an overflow: a non-finite update, which the grad scaler skips (or the trainer reports)
                direction = matrix.sum(dim=0)
            offset = 0
            for p in shared:
                step.accumulate(p, direction[offset:offset + p.numel()].view_as(p))
                offset += p.numel()
        for p, j in zip(specific, jacobians[len(shared):], strict=False):
            step.accumulate(p, j.sum(dim=0))


def _reached(objectives: list, parameters: list) -> set[int]:
    """The ids of the parameters the objectives' graph reaches (a head of a task not in the step is not): a walk
    over the autograd graph, so that an unreached parameter keeps no gradient, as with plain back-propagation."""
    wanted = {id(p) for p in parameters}
    found: set[int] = set()
    seen: set[int] = set()
    stack = [o.grad_fn for o in objectives if o.grad_fn is not None]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        variable = getattr(node, "variable", None)  # AccumulateGrad: a leaf
        if variable is not None and id(variable) in wanted:
            found.add(id(variable))
        stack.extend(n for n, _ in node.next_functions if n is not None)
    return found
