"""Weighting ``gradnorm``: gradient normalization (Chen, Badrinarayanan, Lee & Rabinovich, "GradNorm: Gradient
Normalization for Adaptive Loss Balancing in Deep Multitask Networks", ICML 2018, arXiv 1711.02257, Eqs. 1–2).

Each task i of the run has a learnable weight w_i (initially 1, an extra parameter of ``parameters()`` trained by the
run's optimizer without weight decay, at the run's learning rate or at option ``lr``, and checkpointed). At every
step:
- the network minimises Σ_i w_i·L_i over the tasks of the step, L_i the task's mean instance loss (w held constant);
- on the last shared layer W (the backbone's weight matrix nearest the heads: the weight of the first shared matrix
  found walking the autograd graph back from the losses, BERT's pooler dense layer), G_i = ‖∇_W w_i·L_i‖₂ =
  |w_i|·‖∇_W L_i‖₂, Ḡ = mean_i G_i, L̃_i = L_i/L_i(0) (L_i(0): the task's loss at the first step that trained it,
  kept in the state), r_i = L̃_i / mean_j L̃_j, and the weights get the gradient of the balance loss (Eq. 2)
  L_grad = Σ_i |G_i − Ḡ·r_i^α| with the targets Ḡ·r_i^α held constant (α: option ``alpha``, default 1.5);
- after the optimizer step (``after_step``) the weights are renormalised so that Σ_i w_i = T, the number of tasks.
The per-task gradients of W are averaged over the ranks of a torchrun job (``Step.reduce``) before their norms are
taken, so every rank makes the same weight update (``computes_gradients``: the trainer then trains without DDP and
averages every gradient). The weights applied are logged as ``weight.<task>``, L_grad as ``gradnorm.balance``.

Sampler: use ``all``. The balance compares the tasks of one step: with one task per step L_grad's gradient is 0, the
weights stay 1 and training is plain.
"""

from __future__ import annotations

from mtl import Weighting, hookimpl


class GradNorm(Weighting):
    family = "loss"
    computes_gradients = True

    def __init__(self, alpha: float = 1.5, lr: float | None = None) -> None:
        super().__init__()
        self.parameters_lr = lr  # the weights' learning rate; None: the run's
        if not alpha >= 0:
            raise ValueError(f"alpha must be >= 0 (got {alpha})")
        self.alpha = float(alpha)
        self.tasks: list[str] = []
        self.task_weights = None  # torch.nn.Parameter [T], in run order
        self.initial_losses: dict[str, float] = {}  # L_i(0)
        self.layer = None  # W, found at the first step
        self.balance = 0.0

    def setup(self, run) -> None:
        import torch

        self.tasks = list(run.tasks)
        self.task_weights = torch.nn.Parameter(torch.ones(len(self.tasks), device=run.device))

    def parameters(self) -> list:
        return [self.task_weights] if self.task_weights is not None else []

    def last_shared_layer(self, step, losses):
        """W: the first shared parameter of two or more dimensions met walking the autograd graph back from the
        losses breadth-first (the shared weight matrix nearest the outputs); None when the losses reach none."""
        shared = {id(p): p for p in step.shared_parameters if p.requires_grad and p.dim() >= 2}
        frontier = [value.grad_fn for value in losses if value.grad_fn is not None]
        seen: set[int] = set()
        while frontier:
            following = []
            for node in frontier:
                if id(node) in seen:
                    continue
                seen.add(id(node))
                variable = getattr(node, "variable", None)  # AccumulateGrad: a leaf
                if variable is not None and id(variable) in shared:
                    return shared[id(variable)]
                following.extend(n for n, _ in node.next_functions if n is not None)
            frontier = following
        return None

    def balance_gradient(self, weights, norms, ratios):
        """d L_grad / d w for the step's weights w, gradient norms ‖∇_W L_i‖ and loss ratios L̃_i (Eq. 2)."""
        import torch

        with torch.enable_grad():
            weights = weights.detach().requires_grad_(True)
            norms_of_weighted = weights.abs() * norms  # G_i = ‖∇_W w_i·L_i‖
            relative = ratios / ratios.mean()  # r_i
            targets = (norms_of_weighted.mean() * relative ** self.alpha).detach()
            balance = (norms_of_weighted - targets).abs().sum()
            (gradient,) = torch.autograd.grad(balance, weights)
        return gradient, float(balance.detach())

    def backward(self, step) -> None:
        import torch

        losses = step.task_losses()
        names = list(losses)
        index = torch.tensor([self.tasks.index(task) for task in names], device=self.task_weights.device)
        weights = self.task_weights.detach()[index]
        for task in names:
            self.initial_losses.setdefault(task, float(losses[task].detach()))
        if self.layer is None:
            self.layer = self.last_shared_layer(step, list(losses.values()))
        self.balance = 0.0
        if self.layer is not None and len(names) > 1:
            grads = []
            for task in names:  # true gradients (Step.gradients), whatever the run's precision
                (grad,) = step.gradients(losses[task], [self.layer], retain_graph=True, allow_unused=True)
                grads.append(torch.zeros_like(self.layer) if grad is None else grad)
            norms = step.reduce(torch.stack([g.reshape(-1).float() for g in grads])).norm(dim=1)
            ratios = torch.tensor([float(losses[t].detach()) / self.initial_losses[t] for t in names],
                                  device=norms.device)
            gradient, self.balance = self.balance_gradient(weights, norms, ratios)
            full = torch.zeros_like(self.task_weights).index_add_(0, index, gradient.to(self.task_weights.dtype))
            self.task_weights.grad = full if self.task_weights.grad is None else self.task_weights.grad + full
        step.record_weights(dict(zip(names, weights, strict=True)))
        sum(weight * losses[task] for weight, task in zip(weights, names, strict=True)).backward()

    def after_step(self, step) -> None:
        import torch

        with torch.no_grad():  # renormalise: Σ_i w_i = T
            self.task_weights.mul_(len(self.tasks) / self.task_weights.sum())

    def log(self) -> dict[str, float]:
        return {**super().log(), "gradnorm.balance": self.balance}

    def state_dict(self) -> dict:
        return {"initial_losses": dict(self.initial_losses)}

    def load_state_dict(self, state: dict) -> None:
        self.initial_losses = {task: float(value) for task, value in state.get("initial_losses", {}).items()}


@hookimpl
def register_weightings(register):
    register("gradnorm", GradNorm,
             description="task weights that balance gradient norms on the last shared layer (Chen et al., ICML 2018)")
