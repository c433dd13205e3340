"""Weighting ``db-mtl``: dual-balancing multi-task learning (Lin, Jiang, Ye, Zhang, Chen, Chen, Liu & Kwok,
"Dual-Balancing for Multi-Task Learning", arXiv 2308.12029, 2023, Algorithm 1).

Loss-scale balancing: every task's loss is log-transformed, so that task t contributes ∇log(ℓ_t + ε) = ∇ℓ_t/(ℓ_t + ε)
(the heads get these gradients too). Gradient-magnitude balancing on the shared parameters: each task keeps an
exponential moving average of its log-loss gradient, ĝ_t ← β_k ĝ_t + (1 − β_k)∇log ℓ_t (ĝ_t = 0 at the start,
β_k = β / k^{β_σ}), and the update is Σ_t α_t ĝ_t with α_t = max_s ‖ĝ_s‖ / (‖ĝ_t‖ + ε): every task's moving average
rescaled to the largest norm. ε = 1e-8. ℓ_t is the task's mean loss over the whole step (every rank). α is logged as
``weight.<task>`` (the factor on the task's averaged log-loss gradient); ĝ (T × shared parameters) and k are
checkpointed.
"""

from __future__ import annotations

from mtl import GradientWeighting, hookimpl

from ._torchjd import on_device, rows_in_first_order

EPSILON = 1e-8


class DBMTL(GradientWeighting):
    def __init__(self, beta: float = 0.9, beta_sigma: float = 0.0):
        super().__init__()
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"beta must be in [0, 1) (got {beta})")
        if beta_sigma < 0:
            raise ValueError(f"beta_sigma must be >= 0 (got {beta_sigma})")
        self.beta, self.beta_sigma = beta, beta_sigma
        self.tasks: list[str] | None = None
        self.averages = None  # ĝ, one row per task
        self.steps = 0  # k

    def objectives(self, step) -> dict:
        """The log-transformed losses, whose gradients the Jacobian holds: ∇ log(L + ε) = ∇L / (L + ε), L a task's
        mean loss over the step (its value detached)."""
        means = {task: value.detach() for task, value in step.task_losses().items()}
        return {task: losses.mean() / (means[task] + EPSILON) for task, losses in step.losses.items()}

    def aggregate(self, jacobian, tasks, step):
        import torch

        if len(tasks) == 1:
            step.record_weights({tasks[0]: 1.0})
            return jacobian[0]
        gradients = rows_in_first_order(self, jacobian, tasks, "db-mtl", "averages the gradients")
        if self.averages is None:
            self.averages = torch.zeros_like(gradients)
        self.steps += 1
        beta = self.beta / self.steps ** self.beta_sigma
        self.averages = beta * self.averages + (1.0 - beta) * gradients
        norms = self.averages.norm(dim=1)
        scales = norms.max() / (norms + EPSILON)
        step.record_weights({task: scales[k] for k, task in enumerate(self.tasks)})
        return scales @ self.averages

    def state_dict(self) -> dict:
        """Flat (top-level tensors and JSON values), like the state kept beside the best model."""
        if self.tasks is None:
            return {}
        return {"tasks": list(self.tasks), "averages": self.averages.detach().cpu().clone(), "steps": self.steps,
                "device": str(self.averages.device)}

    def load_state_dict(self, state: dict) -> None:
        if not state:
            return
        self.tasks = list(state["tasks"])
        self.averages = state["averages"].to(on_device(state["device"])).clone()
        self.steps = int(state["steps"])


@hookimpl
def register_weightings(register):
    register("db-mtl", DBMTL, description="log losses and gradients rescaled to the largest norm "
                                          "(Lin et al., Dual-Balancing MTL, arXiv 2308.12029)")
