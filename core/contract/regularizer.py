"""The regularizer base class of the plugin contract (DESIGN.md, "Additions": ``regularizer``).

A regularizer adds a term to every training step's loss, computed from the model and the step's batches
(SMART's smoothness-inducing adversarial term and Bregman proximal term, Jiang et al., ACL 2020). It composes
with any weighting: the trainer back-propagates ``loss(step)`` and then lets the weighting back-propagate its
own loss, so the gradients add up (a weighting's ``backward`` adds to ``.grad``, as ``loss.backward()`` does).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported lazily so that `import mtl` stays fast
    import torch

    from mtl.contract.weighting import Step
    from mtl.model.context import Run


class Regularizer:
    """Base class: no term. Subclasses override ``loss`` and, where they keep a copy of the model, ``after_step``."""

    #: False for a regularizer that cannot train under torchrun (e.g. extra forward/backward passes outside DDP).
    supports_distributed: bool = True

    def setup(self, run: Run) -> None:
        """Called once before training, after the weighting's ``setup`` (the model is complete)."""

    def loss(self, step: Step) -> torch.Tensor | None:
        """The term added to this step's loss (a scalar with a graph to the model), or None for none.

        ``step.logits`` holds each task's outputs on its clean batch (``step.batches``), with their graph;
        ``run.forward(task, batch, embedding_delta=...)`` gives the outputs on a perturbed input.
        """
        return None

    def after_step(self) -> None:
        """Called after every optimizer step that updated the model (e.g. to move a momentum copy)."""

    def log(self) -> dict[str, float]:
        """Scalars recorded each logged step (flat keys, e.g. ``smart.adversarial``)."""
        return {}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
