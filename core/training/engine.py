"""The engine: device, precision and distribution, and the mechanics of backward and the optimizer step.

Precision: ``bf16`` and ``fp16`` autocast the forward; ``fp16`` also scales the loss with a grad scaler
(Micikevicius et al., "Mixed Precision Training", ICLR 2018, §3.2) without the weighting seeing the scale
(:mod:`mtl.training.scaling`): :meth:`Engine.hand_over` gives the weighting the true losses and outputs whose
gradients reach the model S times larger, and :meth:`Engine.step_context` lets :meth:`mtl.Step.gradients` and
:meth:`mtl.Step.jacobian` give a plugin true gradients. Distribution: :mod:`mtl.training.distributed`'s context,
and DistributedDataParallel around the model unless the weighting computes the gradients itself.
"""

from __future__ import annotations

import contextlib
import math

import torch

from mtl.errors import OptionError
from mtl.model import dropout as kernel_dropout
from mtl.model.attention import use_kernel_attention
from mtl.training import distributed
from mtl.training.scaling import scale_gradients


class Engine:
    """Where and how the run's arithmetic happens: ``ctx`` (the torchrun context), ``device``, ``precision`` and the
    fp16 grad ``scaler`` (None otherwise)."""

    def __init__(self, precision: str, ctx: distributed.Context | None = None) -> None:
        self.ctx = ctx or distributed.Context()
        self.precision = precision
        if precision == "fp16" and not torch.cuda.is_available():
            raise OptionError("--precision fp16 needs a CUDA device (its grad scaler); use bf16 on CPU")
        self.device = self.ctx.device if self.ctx.enabled else torch.device("cuda" if torch.cuda.is_available()
                                                                             else "cpu")
        self.dropout_backend = "torch"

    # ------------------------------------------------------------------ precision
    def autocast(self):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def new_scaler(self):
        """fp16's gradient scaler (CUDA only, checked at construction), else None."""
        return torch.amp.GradScaler("cuda") if self.precision == "fp16" else None

    def loss_scale(self, scaler) -> float:
        """The factor S the scaler multiplies gradients by now (1.0 without one); ``scaler.scale`` also sets the
        scaler up on its first use."""
        return float(scaler.scale(torch.ones((), device=self.device))) if scaler is not None else 1.0

    @staticmethod
    def hand_over(tensors: dict, scale: float) -> dict:
        """``tensors`` (losses, outputs) as the weighting sees them: true values whose gradients reach the model
        ``scale`` times larger, what ``scaler.scale(loss)`` would give (:func:`scale_gradients`)."""
        return scale_gradients(tensors, scale) if scale != 1.0 else tensors

    @staticmethod
    def backward(term: torch.Tensor, scale: float, *, retain_graph: bool = False) -> None:
        """Back-propagate a term outside the weighting (a regularizer's) as the scaler would."""
        (term * scale if scale != 1.0 else term).backward(retain_graph=retain_graph)

    # ------------------------------------------------------------------ the model
    def use_cpu_kernels(self, model: torch.nn.Module) -> None:
        """On CPU: dropout and attention dropout by the C++ kernel (mtl.model.dropout, mtl.model.attention)."""
        if self.device.type != "cpu" or kernel_dropout.BACKEND != "cpp":
            return
        kernel_dropout.use_kernel_dropout(model)
        for module in model.modules():
            if hasattr(getattr(module, "config", None), "_attn_implementation"):
                use_kernel_attention(module)
        self.dropout_backend = "cpp"

    def wrap(self, model: torch.nn.Module, weighting, seed: int):
        """The step's forward (``{task: model(task, batch)}``), under DDP when distributed and the weighting does not
        compute the gradients itself (then :meth:`finish_gradients` averages them); a different dropout stream per
        rank."""
        forward = distributed.StepModule(model)
        if not self.ctx.enabled:
            return forward
        if not getattr(weighting, "computes_gradients", False):
            from torch.nn.parallel import DistributedDataParallel

            # one task per step leaves the other heads without gradients: find_unused_parameters
            forward = DistributedDataParallel(
                forward, device_ids=[self.ctx.local_rank] if self.device.type == "cuda" else None,
                find_unused_parameters=True)
        torch.manual_seed(seed + 1_000_003 * self.ctx.rank)
        return forward

    # ------------------------------------------------------------------ the update
    def finish_gradients(self, model: torch.nn.Module, weighting, optimizer, scaler, scale: float,
                         clip: float) -> bool:
        """Average what DDP did not, unscale (fp16), clip the model's gradients; False when their norm is not finite
        (without a scaler: with one, the scaler skips that update)."""
        ctx = self.ctx
        if getattr(weighting, "computes_gradients", False):  # no DDP: average every gradient here
            ctx.average_gradients([*model.parameters(), *weighting.parameters()])
        else:
            ctx.average_gradients(weighting.parameters())
        if scaler is not None:
            for p in weighting.parameters():  # true gradients: scaled like the model's, then the scaler divides
                if p.grad is not None:  # every gradient of the optimizer
                    p.grad.mul_(scale)
            scaler.unscale_(optimizer)
        if clip > 0:
            # the model's gradients only: a weighting's own parameters (GradNorm's weights, UW's log-variances) would
            # otherwise shrink the model's update by the size of their gradients
            norm = torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], clip)
            if scaler is None and not math.isfinite(float(norm)):
                return False
        return True

    @staticmethod
    def optimizer_step(optimizer, scaler) -> None:
        if scaler is not None:
            scaler.step(optimizer)  # skips the update when the scaled gradients overflowed
            scaler.update()
        else:
            optimizer.step()
