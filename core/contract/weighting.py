"""The weighting-strategy base class of the plugin contract (see DESIGN.md, "Weighting").

A weighting decides how much each instance of each task counts in the loss. The trainer calls
``setup(run)`` once, then ``backward(step)`` every step and records ``log()``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported lazily so that `import mtl` stays fast
    import torch

    from mtl.model.context import Run


@dataclass
class Step:
    """What a weighting sees of one training step."""

    losses: dict[str, torch.Tensor]  # unreduced per-instance losses of each task in this step
    features: dict[str, torch.Tensor]  # memory features (mean [CLS] of the last layers), detached, [B, D]
    target: str | None
    index: int  # global step, from 0
    epoch: int  # from 0
    progress: float  # 0..1 over the whole run
    shared_parameters: list = field(default_factory=list)  # the backbone's parameters (gradient methods)
    hidden_states: dict[str, tuple] = field(default_factory=dict)  # all layers' hidden states, per task
    batches: dict[str, Any] = field(default_factory=dict)  # the tokenised inputs, per task
    weights: dict[str, float] = field(default_factory=dict)  # mean weight applied per task, logged as weight.<task>
    logits: dict[str, torch.Tensor] = field(default_factory=dict)  # each task's outputs [B, C] (float32, with graph)
    global_means: dict[str, float] = field(default_factory=dict)  # each task's mean instance loss over every rank
    reduce_fn: Callable[[torch.Tensor], torch.Tensor] | None = None  # mean over ranks (None: one process)
    recompute_fn: Callable[[], dict[str, torch.Tensor]] | None = None  # set by the trainer after the update
    # the engine's (fp16's loss scale); a weighting never reads it: Step.gradients, jacobian and accumulate apply it
    _loss_scale = 1.0

    def gradients(self, outputs, inputs, **kwargs: Any) -> tuple:
        """``torch.autograd.grad(outputs, inputs, **kwargs)`` as true gradients: what a weighting computes from the
        step's losses, logits or hidden states is the gradient of their true values, whatever the run's precision
        (under fp16 the engine's loss scale is divided out)."""
        import torch

        found = torch.autograd.grad(outputs, inputs, **kwargs)
        if self._loss_scale == 1.0:
            return found
        return tuple(None if g is None else g / self._loss_scale for g in found)

    def jacobian(self, objectives: list, inputs: list) -> tuple:
        """The Jacobian of the scalar ``objectives`` with respect to each of ``inputs`` (TorchJD's
        ``torchjd.autojac.jac``: one ``[len(objectives), *shape]`` tensor per input), as true gradients."""
        from torchjd.autojac import jac

        found = jac(objectives, inputs)
        if self._loss_scale == 1.0:
            return tuple(found)
        return tuple(j / self._loss_scale for j in found)

    def accumulate(self, parameter, grad: torch.Tensor) -> None:
        """Add the true gradient ``grad`` to ``parameter.grad`` (a weighting that sets the model's gradients itself;
        the engine's loss scale is applied so that its optimizer step sees them as every other gradient)."""
        grad = grad.to(parameter.dtype)
        if self._loss_scale != 1.0:
            grad = grad * self._loss_scale
        parameter.grad = grad.clone() if parameter.grad is None else parameter.grad + grad

    def losses_after_update(self) -> dict[str, torch.Tensor]:
        """In :meth:`Weighting.after_step`: each task's mean instance loss on this step's batches under the updated
        model (no graph; over every rank), e.g. for FAMO's weight update (Liu et al., NeurIPS 2023, Alg. 1). It
        costs one more forward pass."""
        if self.recompute_fn is None:
            raise RuntimeError("Step.losses_after_update is available in Weighting.after_step only")
        return self.recompute_fn()

    def reduce(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor``'s mean over the ranks of a torchrun job (itself in one process). A weighting that combines
        per-task gradients or loss values non-linearly reduces them first, so every rank makes the same update
        and two processes equal one process on the whole batch."""
        return self.reduce_fn(tensor) if self.reduce_fn is not None else tensor

    def task_losses(self) -> dict[str, torch.Tensor]:
        """Each task's mean instance loss as a scalar with a graph: its value is the mean over the whole step (every
        rank of a torchrun job), its gradient this process's share of that mean's gradient (what the trainer's
        average over ranks completes). Loss-weighting methods weight these."""
        out = {}
        for task, losses in self.losses.items():
            mean = losses.mean()
            if task in self.global_means:
                mean = mean + (self.global_means[task] - mean.detach())
            out[task] = mean
        return out

    def record_weights(self, weights: dict[str, Any]) -> None:
        """Record the weight applied to each task's instances (a number, or one weight per instance): the
        trainer logs their means as ``weight.<task>``."""
        for task, weight in weights.items():
            self.weights[task] = float(weight.float().mean()) if hasattr(weight, "float") else float(weight)

    def weighted(self, weights: dict[str, Any]) -> torch.Tensor:
        """The mean over every instance of the step of weight × instance loss, recording the weights.

        ``weights[task]`` is a number or a tensor of one weight per instance of ``task`` (detach it unless the
        weight itself is to be trained); every task of the step needs one.
        """
        import torch

        missing = [task for task in self.losses if task not in weights]
        if missing:
            raise ValueError(f"Step.weighted: no weight for task(s) {', '.join(missing)}")
        self.record_weights({task: weights[task] for task in self.losses})
        return torch.cat([weights[task] * losses.reshape(-1) for task, losses in self.losses.items()]).mean()


class Weighting:
    """Base class: every instance of every task counts 1 (the mean of all instance losses).

    Subclasses override ``loss`` (instance/task weights, usually ``return step.weighted({task: weight})``) or
    ``backward`` (gradient surgery). The weights applied reach ``weight.<task>`` through the step
    (:meth:`Step.weighted` or :meth:`Step.record_weights`).
    """

    #: False for a weighting that cannot train under torchrun.
    supports_distributed: bool = True
    #: True for a weighting whose ``backward`` sets the gradients itself (``torch.autograd.grad``, per-task
    #: Jacobians) instead of one ``backward`` that DistributedDataParallel could average: under torchrun the trainer
    #: then trains without DDP and averages every gradient over the ranks after ``backward``; what the weighting
    #: combines non-linearly (per-task gradients) it reduces first with :meth:`Step.reduce`.
    computes_gradients: bool = False
    #: How `mtl plugins` groups it: "instance" (per-instance weights), "loss" (per-task loss weights), "gradient"
    #: (combines per-task gradients), "architecture" (adds modules); "other" for a plugin that does not say.
    family: str = "other"
    #: The learning rate the run's optimizer gives :meth:`parameters` (a group of its own, no weight decay, the run's
    #: schedule); None: the run's ``--lr``.
    parameters_lr: float | None = None

    def __init__(self) -> None:
        pass

    def setup(self, run: Run) -> None:
        """Called once before training; may add modules to ``run.model`` (they are then trained and saved)."""

    def loss(self, step: Step) -> torch.Tensor:
        """The scalar to minimise; default: the mean of all instance losses of all tasks in the step."""
        return step.weighted({task: 1.0 for task in step.losses})

    def backward(self, step: Step) -> None:
        """Compute gradients; default ``self.loss(step).backward()`` (a TypeError naming what :meth:`loss` returned
        when it is not a scalar tensor with a graph)."""
        import torch

        loss = self.loss(step)
        if not (isinstance(loss, torch.Tensor) and loss.dim() == 0 and loss.requires_grad):
            shown = (f"a tensor of shape {tuple(loss.shape)}" + ("" if loss.requires_grad else " without a graph")
                     if isinstance(loss, torch.Tensor) else type(loss).__name__)
            raise TypeError(f"loss() must return a scalar tensor that requires grad (got {shown})")
        loss.backward()

    def after_step(self, step: Step) -> None:
        """Called after every optimizer step that updated the model, with the step it trained (e.g. to update
        weights from :meth:`Step.losses_after_update`)."""

    def parameters(self) -> list:
        """Extra trainable parameters not already inside ``run.model`` (gates, log-variances), trained by the run's
        optimizer at :attr:`parameters_lr`."""
        return []

    def log(self) -> dict[str, float]:
        """Scalars recorded each logged step (flat keys, e.g. ``mamt.similarity``); ``weight.<task>`` comes from the
        step (:meth:`Step.record_weights`)."""
        return {}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def inference_module(self, task: str, hidden_size: int) -> torch.nn.Module | None:
        """How ``task``'s inference is rebuilt when ``setup`` put a module between backbone and heads.

        For a weighting whose ``setup`` sets ``run.model.feature_map`` (called ``feature_map(pooled, task)``):
        a fresh module holding only what ``task``'s inference needs, with the same ``forward(pooled, task)``
        and ``state_dict`` keys that are a subset of the feature map's (the trained values of those keys are
        loaded into it). It is called on a weighting built with the run's options, without ``setup``: by
        ``mtl export`` (the module's state is written beside the encoder) and by ``mtl predict`` on an export.
        Default None: the weighting adds no feature map (or one that cannot be exported).
        """
        return None
