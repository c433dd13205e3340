"""Regularizer ``smart``: SMART (Jiang et al., "SMART: Robust and Efficient Fine-Tuning for Pre-trained Natural
Language Models through Principled Regularized Optimization", ACL 2020).

Two terms added to the step's loss (both switchable):

- **Smoothness-inducing adversarial regularisation** (Eq. 3, Algorithm 1 lines 5–11): R_s = mean_i
  max_{‖δ_i‖∞ ≤ ε} ℓ_s(f(x_i + δ_i; θ), f(x_i; θ)) on the word embeddings x_i. δ_i starts as noise N(0, σ²) and
  takes ``steps`` (K) steps of normalised gradient ascent, δ ← Π_ε(δ + η·g/‖g‖∞), g = ∇_δ ℓ_s(f(x+δ), f(x))
  (the clean outputs fixed), Π_ε the projection onto the ℓ∞ ball of radius ε, each instance on its own; pad
  positions stay unperturbed. The term λ_s·R_s is back-propagated through both outputs. K = 0 is the noise-only
  term. ℓ_s is the symmetric KL divergence KL(P‖Q) + KL(Q‖P) of the two output distributions (classification)
  or the squared error (regression).
- **Bregman proximal point optimisation with momentum** (Eqs. 4–5, the "vanilla" Bregman divergence with
  momentum of §3.2): μ·mean_i ℓ_s(f(x_i; θ), f(x_i; θ̃)), θ̃ a copy of the model (no gradient, evaluated without
  dropout) that follows θ after every optimizer step: θ̃ ← (1−β)·θ + β·θ̃.

Defaults are the paper's §5 settings: ε = 1e-5, σ = 1e-5, η = 1e-3, K = 1 (T_x̃ = 1), μ = 1, β = 0.99; λ_s = 1
(the paper searches {1, 3, 5}; MT-DNN's SmartPerturbation uses ``adv_alpha`` = 1). The noise comes from the
run's generator, so a run is reproducible and resumes exactly. It needs a backbone encoder with a word-embedding
table (every ``HFBackbone``) and trains in one process (its extra passes run outside DDP).
"""

from __future__ import annotations

import copy

from mtl import Regularizer, hookimpl


def _wide(x):
    """At least float32 (half-precision outputs of autocast are widened; float64 stays float64)."""
    import torch

    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def symmetric_kl(p_logits, q_logits):
    """KL(P‖Q) + KL(Q‖P) = Σ_c (p_c − q_c)(log p_c − log q_c) per row, P = softmax(p_logits)."""
    import torch

    log_p, log_q = torch.log_softmax(_wide(p_logits), dim=-1), torch.log_softmax(_wide(q_logits), dim=-1)
    return ((log_p.exp() - log_q.exp()) * (log_p - log_q)).sum(dim=-1)


def divergence(a, b, task):
    """ℓ_s: squared error per instance for a regression output; otherwise the symmetric KL of each categorical
    distribution the task's type reads in its logits (one per instance for a classification or a choice, one per
    token for tags, two per window for QA spans: ``task.kind.categorical``)."""
    p, q = task.kind.categorical(task, a), task.kind.categorical(task, b)
    if p is None:
        return (_wide(a) - _wide(b)).square().reshape(a.shape[0], -1).sum(dim=-1)
    return symmetric_kl(p, q)


class Smart(Regularizer):
    supports_distributed = False  # K ascent passes and the momentum copy's forward run outside DDP

    def __init__(self, adversarial: bool = True, weight: float = 1.0, epsilon: float = 1e-5, sigma: float = 1e-5,
                 step_size: float = 1e-3, steps: int = 1, proximal: bool = True, mu: float = 1.0, beta: float = 0.99):
        for name, value in (("weight", weight), ("epsilon", epsilon), ("sigma", sigma), ("step_size", step_size),
                            ("mu", mu)):
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0 (got {value})")
        if steps < 0:
            raise ValueError(f"steps must be >= 0 (got {steps})")
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta must be in [0, 1] (got {beta})")
        if not (adversarial or proximal):
            raise ValueError("adversarial and proximal are both off: nothing to add (drop --regularizer smart)")
        self.adversarial, self.weight, self.epsilon, self.sigma = adversarial, weight, epsilon, sigma
        self.step_size, self.steps, self.proximal, self.mu, self.beta = step_size, steps, proximal, mu, beta
        self.run = None
        self.width = 0  # E, the width of the word embeddings
        self.momentum = None  # θ̃, the proximal point's model copy
        self.last: dict[str, float] = {}

    def setup(self, run) -> None:
        self.run = run
        if self.adversarial:
            self.width = run.embedding_size  # a ValueError now (no word-embedding table), not at the first step
        if self.proximal:
            self.momentum = copy.deepcopy(run.model)
            self.momentum.requires_grad_(False)
            self.momentum.eval()

    def task(self, name: str):
        return self.run.tasks[name]

    # ------------------------------------------------------------------ the adversarial term
    def noise(self, batch):
        """δ_0 ~ N(0, σ²) [N, S, E] from the run's generator, zero on pad positions (N: the sequences the backbone
        encodes, e.g. B·k for multiple choice)."""
        import torch

        input_ids = batch["input_ids"]
        shape = (*input_ids.shape, self.width)
        delta = torch.randn(shape, generator=self.run.rng) * self.sigma
        return self.mask(delta.to(input_ids.device), batch)

    @staticmethod
    def mask(delta, batch):
        return delta * batch["attention_mask"][..., None].to(delta.dtype)

    def ascend(self, task: str, batch, clean, delta):
        """K steps of normalised gradient ascent from ``delta`` against the fixed clean outputs (Alg. 1, l. 6–10)."""
        import torch

        clean = clean.detach()
        for _ in range(self.steps):
            delta = delta.detach().requires_grad_(True)
            harm = divergence(self.run.forward(task, batch, embedding_delta=delta), clean, self.task(task)).sum()
            (grad,) = torch.autograd.grad(harm, delta)
            scale = grad.abs().amax(dim=tuple(range(1, grad.dim())), keepdim=True).clamp_min(1e-12)  # ‖g_i‖∞
            encoded = self.run.model.backbone_batch(task, batch)
            delta = self.mask((delta + self.step_size * grad / scale).clamp(-self.epsilon, self.epsilon), encoded)
        return delta.detach()

    def adversarial_term(self, task: str, batch, clean):
        """ℓ_s(f(x + δ*), f(x)) per instance, δ* found by :meth:`ascend` (gradients through both outputs)."""
        delta = self.ascend(task, batch, clean, self.noise(self.run.model.backbone_batch(task, batch)))
        return divergence(self.run.forward(task, batch, embedding_delta=delta), clean, self.task(task))

    # ------------------------------------------------------------------ the proximal term
    def proximal_term(self, task: str, batch, outputs):
        """ℓ_s(f(x; θ), f(x; θ̃)) per instance (θ̃ the momentum copy, no gradient)."""
        import torch

        with torch.no_grad():
            anchor = self.momentum(task, batch)[0]
        return divergence(outputs, anchor, self.task(task))

    def loss(self, step):
        import torch

        terms, self.last = [], {}
        if self.adversarial:
            r_s = torch.cat([self.adversarial_term(t, step.batches[t], step.logits[t]) for t in step.logits]).mean()
            self.last["smart.adversarial"] = float(r_s.detach())
            terms.append(self.weight * r_s)
        if self.proximal:
            d_b = torch.cat([self.proximal_term(t, step.batches[t], step.logits[t]) for t in step.logits]).mean()
            self.last["smart.proximal"] = float(d_b.detach())
            terms.append(self.mu * d_b)
        return sum(terms)

    def after_step(self) -> None:
        """θ̃ ← (1−β)·θ + β·θ̃ (Eq. 5); buffers are copied."""
        import torch

        if self.momentum is None:
            return
        with torch.no_grad():
            current = dict(self.run.model.named_parameters())
            for name, value in self.momentum.named_parameters():
                value.mul_(self.beta).add_(current[name].detach(), alpha=1.0 - self.beta)
            buffers = dict(self.run.model.named_buffers())
            for name, value in self.momentum.named_buffers():
                value.copy_(buffers[name])

    def log(self) -> dict[str, float]:
        return dict(self.last)

    def state_dict(self) -> dict:
        if self.momentum is None:
            return {}
        return {"momentum": {k: v.detach().cpu().clone() for k, v in self.momentum.state_dict().items()}}

    def load_state_dict(self, state: dict) -> None:
        if self.momentum is not None and state.get("momentum"):
            self.momentum.load_state_dict(state["momentum"])


@hookimpl
def register_regularizers(register):
    register("smart", Smart,
             description="SMART: adversarial smoothness + Bregman proximal point (Jiang et al., ACL 2020)")
