"""fp16 loss scaling that weightings do not see (Micikevicius et al., "Mixed Precision Training", ICLR 2018, §3.2).

``torch.amp.GradScaler`` multiplies the loss by a factor S before ``backward`` so that small fp16 gradients do not
underflow, and divides the gradients by S before the optimizer step. Scaling the losses a weighting receives would
change what a weighting computes from their values (log-losses, loss ratios, uncertainty weighting's exp(−s)·L + s)
and from per-task gradients (a gradient method that is not homogeneous of degree 1). Instead the trainer hands the
weighting the true losses and outputs through :func:`scale_gradient`: the identity forward, whose backward
multiplies the gradient by S. Every gradient that reaches the model through them is S times the true one, as with
``scaler.scale(loss)``; a weighting's own parameters get their true gradients, which the trainer multiplies by S
before the scaler divides every gradient of the optimizer by it.
"""

from __future__ import annotations

import torch


class _ScaleGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, tensor: torch.Tensor, factor: float) -> torch.Tensor:
        ctx.factor = factor
        return tensor.view_as(tensor)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad * ctx.factor, None


def scale_gradient(tensor: torch.Tensor, factor: float) -> torch.Tensor:
    """``tensor`` itself in the forward; its gradient multiplied by ``factor`` in the backward (1: ``tensor``)."""
    if factor == 1.0 or not tensor.requires_grad:
        return tensor
    return _ScaleGradient.apply(tensor, factor)


def scale_gradients(tensors: dict, factor: float) -> dict:
    """:func:`scale_gradient` on each value of a dict (a tensor, or a tuple of tensors)."""
    return {key: tuple(scale_gradient(t, factor) for t in value) if isinstance(value, tuple)
            else scale_gradient(value, factor) for key, value in tensors.items()}
