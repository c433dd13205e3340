"""Weighting ``moco``: stochastic multi-objective gradient correction (Fernando, Shen, Liu, Chaudhury, Murugesan & Chen,
"Mitigating Gradient Bias in Multi-objective Learning: A Provably Convergent Approach", ICLR 2023, arXiv 2210.12624,
Algorithm 1).

Stochastic MGDA is biased: its weights are a non-linear function of noisy gradients. MoCo tracks each task's gradient
with a variable y_i and computes the weights from the tracked gradients: at step k (from 1), with h_i the task's
gradient on this step's batch,

    y_i ← y_i − β_k (y_i − h_i)                          (Eq. 3.3; y_i = 0 at the start)
    λ ← Π_Δ(λ − γ_k (YᵀY + ρI) λ)                        (Eq. 3.5; λ = 1/T at the start, Π_Δ onto the simplex)
    update direction Y λ = Σ_i λ_i y_i                    (Eq. 3.6)

with β_k = β / k^{β_σ} and γ_k = γ / k^{γ_σ} (defaults 0.5, 0.5, 0.1, 0.5 and ρ = 0, as in LibMTL). The tracked
gradients are not projected onto bounded sets (the bounds L_i of the analysis are taken as infinite). LibMTL's
version differs: it rescales each task gradient to the norm of its loss before tracking and updates λ with a softmax
instead of the projection. λ is logged; y (T × shared parameters), λ and k are checkpointed.
"""

from __future__ import annotations

from mtl import GradientWeighting, hookimpl

from ._torchjd import on_device, rows_in_first_order


class MoCo(GradientWeighting):
    def __init__(self, beta: float = 0.5, beta_sigma: float = 0.5, gamma: float = 0.1, gamma_sigma: float = 0.5,
                 rho: float = 0.0):
        super().__init__()
        if not 0.0 < beta <= 1.0:
            raise ValueError(f"beta must be in (0, 1] (got {beta})")
        if gamma <= 0:
            raise ValueError(f"gamma must be > 0 (got {gamma})")
        if beta_sigma < 0 or gamma_sigma < 0 or rho < 0:
            raise ValueError(f"beta_sigma, gamma_sigma and rho must be >= 0 (got {beta_sigma}, {gamma_sigma}, {rho})")
        self.beta, self.beta_sigma, self.gamma, self.gamma_sigma, self.rho = beta, beta_sigma, gamma, gamma_sigma, rho
        self.tasks: list[str] | None = None
        self.tracked = None  # y, one row per task
        self.weights = None  # λ
        self.steps = 0  # k

    def aggregate(self, jacobian, tasks, step):
        import torch

        if len(tasks) == 1:
            step.record_weights({tasks[0]: 1.0})
            return jacobian[0]
        gradients = rows_in_first_order(self, jacobian, tasks, "moco", "tracks the gradients")
        if self.tracked is None:
            self.tracked = torch.zeros_like(gradients)
            self.weights = torch.full((len(self.tasks),), 1.0 / len(self.tasks), dtype=gradients.dtype,
                                      device=gradients.device)
        self.steps += 1
        beta = self.beta / self.steps ** self.beta_sigma
        gamma = self.gamma / self.steps ** self.gamma_sigma
        self.tracked = self.tracked - beta * (self.tracked - gradients)
        gramian = self.tracked @ self.tracked.T
        regularised = gramian + self.rho * torch.eye(len(self.tasks), dtype=gramian.dtype, device=gramian.device)
        self.weights = project_onto_simplex(self.weights - gamma * (regularised @ self.weights))
        step.record_weights({task: self.weights[k] for k, task in enumerate(self.tasks)})
        return self.weights @ self.tracked

    def state_dict(self) -> dict:
        """Flat (top-level tensors and JSON values), like the state kept beside the best model."""
        if self.tasks is None:
            return {}
        return {"tasks": list(self.tasks), "tracked": self.tracked.detach().cpu().clone(),
                "weights": self.weights.detach().cpu().clone(), "steps": self.steps, "device": str(self.tracked.device)}

    def load_state_dict(self, state: dict) -> None:
        if not state:
            return
        device = on_device(state["device"])
        self.tasks = list(state["tasks"])
        self.tracked, self.weights = state["tracked"].to(device).clone(), state["weights"].to(device).clone()
        self.steps = int(state["steps"])


def project_onto_simplex(vector):
    """The Euclidean projection of a vector onto the probability simplex {x ≥ 0, Σx = 1} (sort-based, e.g. Wang &
    Carreira-Perpiñán, arXiv 1309.1541, Algorithm 1)."""
    import torch

    ordered = torch.sort(vector, descending=True).values
    cumulative = torch.cumsum(ordered, dim=0) - 1.0
    ranks = torch.arange(1, vector.shape[0] + 1, dtype=vector.dtype, device=vector.device)
    last = int(torch.nonzero(ordered - cumulative / ranks > 0).max())
    threshold = cumulative[last] / (last + 1)
    return (vector - threshold).clamp(min=0.0)


@hookimpl
def register_weightings(register):
    register("moco", MoCo, description="MGDA on tracked task gradients, correcting the stochastic bias "
                                       "(Fernando et al., ICLR 2023, arXiv 2210.12624)")
