"""Dropout whose masks come from the C++ kernel ``mtl._dropout`` (CPU, float32 and bfloat16).

Inverted dropout (Srivastava et al., "Dropout: a simple way to prevent neural networks from overfitting", JMLR 2014,
§4 with the 1/(1 − p) scaling at training time): ``y = r ⊙ x / (1 − p)``, ``r_i ~ Bernoulli(1 − p)``.

torch's CPU dropout draws a float mask with ``bernoulli_`` (one Mersenne Twister draw per element), stores it and
multiplies: in a MiniLM training step in bf16 that is a fifth of the time (README, "Where a bf16 step's time
goes"). The kernel instead hashes the element's index with a per-call seed (csrc/dropout.cpp): one pass forward,
one pass backward that regenerates the same mask from the seed, no mask kept in memory. The seed is drawn from
torch's default CPU generator, so ``torch.manual_seed`` makes a run reproducible as before (the masks differ from
torch's, as any two generators' do); the rate is p to within 2⁻³³.

:data:`BACKEND` is ``"cpp"`` when the kernel is built and ``MTL_DROPOUT_BACKEND`` is not ``torch``; other devices,
other dtypes and p outside (0, 1) use ``torch.nn.functional.dropout``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from mtl import backends

try:  # the compiled kernel; absent only in a source tree that was never built
    from mtl import _dropout as _kernel
except ImportError:  # pragma: no cover - depends on the build
    _kernel = None

#: ``"cpp"``: CPU float32/bfloat16 dropout uses the kernel; ``"torch"``: ``torch.nn.functional.dropout`` everywhere.
#: Read at every call, so a benchmark may switch it between runs in one process.
BACKEND: str = backends.choose("MTL_DROPOUT_BACKEND", _kernel, "mtl._dropout")

_KERNEL_DTYPES = (torch.float32, torch.bfloat16)


def uses_kernel(x: torch.Tensor, p: float) -> bool:
    """Whether :func:`dropout` sends ``x`` to the C++ kernel: CPU, float32 or bfloat16, 0 < p < 1, backend cpp, and
    a plain tensor (not one of torch.func's vmap/grad wrappers, which have no memory of their own to hand over)."""
    return (BACKEND == "cpp" and 0.0 < p < 1.0 and x.device.type == "cpu" and x.dtype in _KERNEL_DTYPES
            and not _wrapped(x))


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """``torch.nn.functional.dropout(x, p, training)`` with the kernel's masks where :func:`uses_kernel`."""
    if training and uses_kernel(x, p):
        return _KernelDropout.apply(x, float(p))
    return nn.functional.dropout(x, p, training)


def keep_mask(numel: int, p: float, seed: int) -> torch.Tensor:
    """The kernel's keep mask (bool [numel]) for ``seed``: what :func:`dropout` multiplies by ``1 / (1 − p)``."""
    _require_kernel()
    return torch.from_numpy(_kernel.mask(numel, p, seed & 0xFFFFFFFFFFFFFFFF)).bool()


def scale_factor(p: float) -> float:
    """The factor kept elements are multiplied by: ``1 / (1 − p')``, p' = p rounded to a multiple of 2⁻³²."""
    _require_kernel()
    return float(_kernel.scale_factor(p))


class KernelDropout(nn.Dropout):
    """``nn.Dropout`` that uses :func:`dropout` (the same ``p``, ``inplace`` falls back to torch)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inplace:
            return super().forward(x)
        return dropout(x, self.p, self.training)


def use_kernel_dropout(model: nn.Module) -> int:
    """Replace every plain ``nn.Dropout`` in ``model`` by a :class:`KernelDropout` of the same rate; the count.

    Dropout modules hold no parameters, so state dicts, checkpoints and exports are unchanged."""
    count = 0
    for parent in model.modules():
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout:
                setattr(parent, name, KernelDropout(child.p, child.inplace))
                count += 1
    return count


class _KernelDropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, p: float) -> torch.Tensor:
        # a fresh 64-bit seed from torch's default generator: reproducible under torch.manual_seed
        seed = int(torch.randint(0, 2**63 - 1, (), dtype=torch.int64))
        ctx.p, ctx.seed = p, seed
        return _scale(x, p, seed)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        if _wrapped(grad):  # a batched backward (autograd.grad(is_grads_batched=True), as Jacobian methods use)
            keep = keep_mask(grad.numel(), ctx.p, ctx.seed).view(grad.shape)
            factor = torch.where(keep, scale_factor(ctx.p), 0.0)
            return (grad.float() * factor).to(grad.dtype), None
        return _scale(grad, ctx.p, ctx.seed), None


def _scale(x: torch.Tensor, p: float, seed: int) -> torch.Tensor:
    """``x ⊙ keep(seed) / (1 − p)`` by the kernel (the same mask for the same seed, shape and p)."""
    x = x.detach().contiguous()
    out = torch.empty_like(x, memory_format=torch.contiguous_format)
    _kernel.scale(_bits(x), _bits(out), p, seed, torch.get_num_threads())
    return out


def _wrapped(t: torch.Tensor) -> bool:
    """A torch.func (vmap, grad, jacrev) wrapper or a batched gradient of ``autograd.grad(is_grads_batched=True)``:
    its values are not in memory the kernel can use."""
    functorch = torch._C._functorch
    return functorch.is_functorch_wrapped_tensor(t) or functorch.is_legacy_batchedtensor(t)


def _bits(t: torch.Tensor):
    """A zero-copy numpy view the kernel takes: float32 as is, bfloat16 as its int16 bit pattern."""
    return (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy()


def _require_kernel() -> None:
    if _kernel is None:  # pragma: no cover - depends on the build
        raise RuntimeError("the C++ dropout kernel mtl._dropout is not built (pip install -e .)")
