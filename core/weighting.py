"""The weighting-strategy base class of the plugin contract (see DESIGN.md, "Weighting").

A weighting decides how much each instance of each task counts in the loss. The trainer calls
``setup(run)`` once, then ``backward(step)`` every step and records ``log()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported lazily so that `import mtl` stays fast
    import torch

    from .run import Run


@dataclass
class Step:
    """What a weighting sees of one training step."""

    losses: dict[str, "torch.Tensor"]  # unreduced per-instance losses of each task in this step
    features: dict[str, "torch.Tensor"]  # memory features (mean [CLS] of the last layers), detached, [B, D]
    target: str | None
    index: int  # global step, from 0
    epoch: int  # from 0
    progress: float  # 0..1 over the whole run
    shared_parameters: list = field(default_factory=list)  # the backbone's parameters (gradient methods)
    hidden_states: dict[str, tuple] = field(default_factory=dict)  # all layers' hidden states, per task
    batches: dict[str, Any] = field(default_factory=dict)  # the tokenised inputs, per task


class Weighting:
    """Base class: every instance of every task counts 1 (the mean of all instance losses).

    Subclasses override ``loss`` (instance/task weights) or ``backward`` (gradient surgery). The effective
    mean weight applied to each task is recorded in ``self.applied`` and logged as ``weight.<task>``.
    """

    #: False for a weighting that cannot train under torchrun (e.g. it computes gradients with
    #: ``torch.autograd.grad`` instead of one ``backward``, which DistributedDataParallel does not average).
    supports_distributed: bool = True

    def __init__(self) -> None:
        self.applied: dict[str, float] = {}

    def setup(self, run: "Run") -> None:
        """Called once before training; may add modules to ``run.model`` (they are then trained and saved)."""

    def loss(self, step: Step) -> "torch.Tensor":
        """The scalar to minimise; default: the mean of all instance losses of all tasks in the step."""
        import torch

        self.applied = {task: 1.0 for task in step.losses}
        return torch.cat([losses.reshape(-1) for losses in step.losses.values()]).mean()

    def backward(self, step: Step) -> None:
        """Compute gradients; default ``self.loss(step).backward()``."""
        self.loss(step).backward()

    def parameters(self) -> list:
        """Extra trainable parameters not already inside ``run.model`` (gates, log-variances)."""
        return []

    def log(self) -> dict[str, float]:
        """Scalars recorded each logged step (flat keys, e.g. ``weight.rte``, ``mamt.similarity``)."""
        return {f"weight.{task}": float(value) for task, value in getattr(self, "applied", {}).items()}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
