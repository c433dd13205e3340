"""Weighting ``stch``: smooth Tchebycheff scalarization (Lin, Zhang, Yang, Liu, Wang & Zhang, "Smooth Tchebycheff
Scalarization for Multi-Objective Optimization", ICML 2024, arXiv 2402.19078; its scalarization g_μ^STCH).

The loss is μ·log Σ_i exp(λ_i·(L_i − z_i)/μ) over the T tasks of the step, L_i the task's mean instance loss, with
the uniform preference λ_i = 1/T (the centre of the simplex the paper's preferences lie on) and smoothing μ (option
``mu``, default 1 as in LibMTL; smaller is closer to the non-smooth max_i λ_i·(L_i − z_i)), computed by TorchJD's
``torchjd.scalarization.STCH``. Its gradient weights L_i by λ_i·softmax_i(λ·(L − z)/μ): the task furthest above its
reference point dominates; those weights are logged as ``weight.<task>``.

The reference point z (the paper's ideal point z*, a lower bound of every objective), option ``reference``:
- ``zero`` (default): z_i = 0, the infimum of a cross-entropy or squared-error loss, so no state;
- ``minimum``: z_i = the smallest L_i seen so far in the run, this step included (a running estimate of the ideal
  point, L_i − z_i ≥ 0; kept in the weighting's state and checkpointed).
The paper's formula on the raw losses: tasks whose losses have different scales (a regression's squared error beside
cross-entropies) are compared as they are. LibMTL's variant (log of the losses divided by their mean over a warm-up
epoch, Σ log L_i during the warm-up) is not what this implements.

Sampler: use ``all``. With one task per step the loss is L_i − z_i (plain training).
"""

from __future__ import annotations

from typing import Literal

from mtl import Weighting, hookimpl


class SmoothTchebycheff(Weighting):
    family = "loss"

    def __init__(self, mu: float = 1.0, reference: Literal["zero", "minimum"] = "zero") -> None:
        super().__init__()
        if not mu > 0:
            raise ValueError(f"mu must be > 0 (got {mu})")
        self.mu, self.reference = float(mu), reference
        self.minimum: dict[str, float] = {}  # reference "minimum": the smallest mean loss of each task so far

    def reference_point(self, losses: dict) -> list[float]:
        """z for the step's tasks, in order (updating the running minimum first where that is the reference)."""
        if self.reference == "zero":
            return [0.0] * len(losses)
        for task, value in losses.items():
            value = float(value.detach())
            self.minimum[task] = min(self.minimum.get(task, value), value)
        return [self.minimum[task] for task in losses]

    def loss(self, step):
        import torch
        from torchjd.scalarization import STCH

        losses = step.task_losses()
        values = torch.stack(list(losses.values()))
        reference = torch.tensor(self.reference_point(losses), dtype=values.dtype, device=values.device)
        preference = torch.full_like(values, 1.0 / len(values))
        total = STCH(self.mu, weights=preference, reference=reference)(values)
        gradient_weights = preference * torch.softmax(preference * (values.detach() - reference) / self.mu, dim=0)
        step.record_weights(dict(zip(losses, gradient_weights, strict=True)))
        return total

    def state_dict(self) -> dict:
        return {"minimum": dict(self.minimum)}

    def load_state_dict(self, state: dict) -> None:
        self.minimum = {task: float(value) for task, value in state.get("minimum", {}).items()}


@hookimpl
def register_weightings(register):
    register("stch", SmoothTchebycheff,
             description="smooth Tchebycheff scalarization μ·log Σ exp(λ(L − z)/μ) (Lin et al., ICML 2024)")
