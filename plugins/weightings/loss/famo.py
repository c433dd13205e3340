"""Weighting ``famo``: fast adaptive multitask optimization (Liu, Feng, Stone & Liu, "FAMO: Fast Adaptive Multitask
Optimization", NeurIPS 2023, arXiv 2306.03792, Algorithms 1–2).

Task weights z = softmax(ξ) come from logits ξ (one per task of the run, initially 0). The network minimises
c·Σ_i z_i·log(L_i + ε), L_i the task's mean instance loss (over every rank), c = (Σ_i z_i/(L_i + ε))^{−1} held
constant: its gradient is the convex combination Σ_i (c·z_i/L_i)·∇L_i, whose coefficients are logged as
``weight.<task>``. After each update (``after_step``) the losses of the same batches are measured again under the
updated model (``Step.losses_after_update``, one more forward pass) and the logits take one Adam step (learning rate
``logits_lr``, default 0.025; weight decay ``logits_decay`` γ, default 10⁻³, the paper's Alg. 2) along the gradient
Jᵀδ of the softmax, δ_i = log(L_i(before) + ε) − log(L_i(after) + ε): tasks whose loss fell less get more weight.
Both halves are TorchJD's ``torchjd.scalarization.FAMO`` (``forward`` and ``update``; ε = 10⁻⁸, lower bounds 0). The
logits and their Adam state are the weighting's state, checkpointed: they are FAMO's own, not trained by the run's
optimizer (``parameters()`` is empty).

Sampler: ``all`` — every task of the run in every step, as the logit update compares all of them; a step with fewer
tasks is an error. Needs positive losses (cross-entropy, squared error).
"""

from __future__ import annotations

from mtl import Weighting, hookimpl


class Famo(Weighting):
    family = "loss"

    def __init__(self, logits_lr: float = 0.025, logits_decay: float = 1e-3) -> None:
        super().__init__()
        if not logits_lr >= 0:
            raise ValueError(f"logits_lr must be >= 0 (got {logits_lr})")
        if not logits_decay >= 0:
            raise ValueError(f"logits_decay must be >= 0 (got {logits_decay})")
        self.logits_lr, self.logits_decay = float(logits_lr), float(logits_decay)
        self.tasks: list[str] = []
        self.scalarizer = None  # torchjd.scalarization.FAMO over the run's tasks, in run order

    def setup(self, run) -> None:
        from torchjd.scalarization import FAMO

        self.tasks = list(run.tasks)
        self.scalarizer = FAMO(len(self.tasks), lr=self.logits_lr, weight_decay=self.logits_decay).to(run.device)

    def _stacked(self, losses: dict, index: int):
        """The run's tasks' values in run order; an error naming the missing tasks where the step lacks some."""
        import torch

        from mtl.errors import MtlError

        missing = [task for task in self.tasks if task not in losses]
        if missing:
            raise MtlError(f"weighting 'famo' needs every task in every step (use --sampler all); step {index} "
                           f"has no batch of {', '.join(missing)}")
        return torch.stack([losses[task] for task in self.tasks])

    def logits(self):
        """ξ, the task-weight logits (a copy)."""
        return self.scalarizer.state_dict()["_w"].detach().clone()

    def loss(self, step):
        import torch

        values = self._stacked(step.task_losses(), step.index)
        z = torch.softmax(self.logits().to(values.device), dim=0)
        shifted = values.detach() + 1e-8
        coefficients = (z / shifted) / (z / shifted).sum()  # c·z_i/L_i: the weight of ∇L_i in the update
        step.record_weights(dict(zip(self.tasks, coefficients, strict=True)))
        return self.scalarizer(values)

    def after_step(self, step) -> None:
        import torch

        after = step.losses_after_update()
        values = self._stacked(after, step.index).to(self.logits().device, torch.float32)
        self.scalarizer.update(values)

    def state_dict(self) -> dict:
        """The logits and their Adam moments (flat tensors: no Adam step has been taken before the first update)."""
        state = {"logits": self.logits().cpu()}
        optimizer = getattr(self.scalarizer, "_optimizer", None) if self.scalarizer is not None else None
        # TorchJD 0.18 keeps FAMO's Adam in a private attribute, created at the first update (pinned: torchjd<0.19)
        moments = optimizer.state_dict()["state"].get(0) if optimizer is not None else None
        if moments:
            state.update({f"adam_{key}": value.detach().cpu().clone() for key, value in moments.items()})
        return state

    def load_state_dict(self, state: dict) -> None:
        import torch

        parameter = self.scalarizer.state_dict(keep_vars=True)["_w"]
        with torch.no_grad():
            parameter.copy_(state["logits"].to(parameter.device))
        moments = {key[len("adam_"):]: value for key, value in state.items() if key.startswith("adam_")}
        if moments:
            optimizer = torch.optim.Adam([parameter], lr=self.logits_lr, weight_decay=self.logits_decay)
            optimizer.load_state_dict({"state": {0: moments}, "param_groups": optimizer.state_dict()["param_groups"]})
            self.scalarizer._optimizer = optimizer
        else:
            self.scalarizer._optimizer = None


@hookimpl
def register_weightings(register):
    register("famo", Famo,
             description="loss-decrease-balancing task weights in O(1) (Liu, Feng, Stone & Liu, NeurIPS 2023)")
