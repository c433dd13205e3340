"""MAMT's feature memory: similarity, top-k, sequential replacement and auxiliary weights.

Yan et al., "Memory-assistant collaborative language understanding", IEEE TII 2022 (MAMT). The memory
``A`` is an ``[M, D]`` tensor of target-task features (M slots); ``z`` is a ``[B, D]`` batch of features.

* :func:`similarity` — ``F(z_i, A_j)`` for all pairs, Eq. 2. ``metric="cosine"`` (default):
  ``z·a / (‖z‖‖a‖)``, 0 when either norm is 0. ``metric="maxnorm"``: the paper's formula taken literally,
  ``z·a / max(‖z‖, ‖a‖)``, 0 when both norms are 0; it equals cosine on unit vectors (``max(1, 1) = 1``)
  but is not scale invariant in general.
* :func:`replace` — Eq. 3 / Algorithm 1 lines 4–12, in place: instances in batch order; instance ``i``
  takes the least similar slot ``argmin_j F(z_i, A_j)`` (lowest index on ties) when ``u[i] < psi``, else
  slot ``r[i]``; ``A[slot] = z_i``, and later instances see earlier replacements (exact sequential
  semantics). ``u`` (uniform draws) and ``r`` (random slots) come from the caller's generator, so a run is
  reproducible and every distributed rank makes the same replacements.
* :func:`weights` — Eqs. 4–5: ``S_i`` = mean of the top-``k`` similarities of ``z_i`` to the memory
  (``k=None`` = all M slots, the paper's mean), ``τ_i = min(φ, max(0, S_i))``.
* :func:`topk` — the ``k`` largest similarities of each row, descending, ties by lower index.

Inputs are torch tensors. CPU float32 goes to the C++ kernel ``mtl._memory`` (zero-copy numpy views, GIL
released, vectorised for the CPU it runs on); any other device or floating dtype goes to the equivalent
pure-torch implementation of :mod:`mtl.memory_torch` (:func:`similarity_torch`, :func:`replace_torch`,
:func:`weights_torch`, :func:`topk_torch`, also grouped as :data:`torch_impl`), which the tests use as the reference.
:data:`BACKEND` is ``"cpp"`` when the extension imported, else ``"torch"``; ``MTL_MEMORY_BACKEND=torch``
forces torch. Wrong shapes, non-floating dtypes, ``z`` and ``mem`` of different dtypes or devices, and
non-finite values raise :class:`ValueError` (the kernel ``mtl._memory`` itself takes float32 only).

For the default cosine metric with ``k = M``, ``S_i = ẑ_i · mean_j(â_j)`` (DESIGN.md, "two facts"), so the
weights only need the mean of the normalised memory; :class:`MeanTracker` keeps that mean current in
O(D) per replacement, making :meth:`MeanTracker.weights` O(B·D).
"""

from __future__ import annotations

import operator
from typing import Any

import torch

from mtl import backends
from mtl.memory_torch import (
    normalized_mean_torch,
    replace_torch,
    similarity_torch,
    topk_torch,
    torch_impl,
    weights_torch,
)

try:  # the compiled kernel; absent only in a source tree that was never built
    from mtl import _memory as _kernel
except ImportError:  # pragma: no cover - depends on the build
    _kernel = None

#: ``"cpp"`` when CPU float32 inputs go to the C++ kernel ``mtl._memory``, ``"torch"`` otherwise.
BACKEND: str = backends.choose("MTL_MEMORY_BACKEND", _kernel, "mtl._memory")

METRICS = ("cosine", "maxnorm")

__all__ = [
    "BACKEND", "METRICS", "MeanTracker", "normalized_mean", "replace", "similarity", "topk", "weights",
    "normalized_mean_torch", "replace_torch", "similarity_torch", "topk_torch", "weights_torch", "torch_impl",
]


# ----------------------------------------------------------------------------------------------------
# Validation


def _tensor(x: Any, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    try:
        return torch.as_tensor(x)
    except Exception as exc:  # noqa: BLE001 - any conversion failure is a bad argument
        raise ValueError(f"{name} must be a tensor, got {type(x).__name__}") from exc


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(map(repr, METRICS))}, got {metric!r}")


def _check_pair(z: Any, mem: Any) -> tuple[torch.Tensor, torch.Tensor]:
    z, mem = _tensor(z, "z"), _tensor(mem, "mem")
    for name, t in (("z", z), ("mem", mem)):
        if t.ndim != 2:
            raise ValueError(f"{name} must be 2-D [rows, D], got shape {list(t.shape)}")
        if not t.dtype.is_floating_point:
            raise ValueError(f"{name} must be a floating-point tensor (float32 for the C++ kernel), got {t.dtype}")
    if mem.shape[0] < 1:
        raise ValueError("mem is empty: the memory needs at least one slot (M >= 1)")
    if mem.shape[1] < 1:
        raise ValueError(f"feature dimension D must be >= 1, got mem of shape {list(mem.shape)}")
    if z.shape[1] != mem.shape[1]:
        raise ValueError(
            f"z and mem must have the same feature dimension D, got z {list(z.shape)} and mem {list(mem.shape)}"
        )
    if z.dtype != mem.dtype:
        raise ValueError(f"z and mem must have the same dtype, got {z.dtype} and {mem.dtype}")
    if z.device != mem.device:
        raise ValueError(f"z and mem must be on the same device, got {z.device} and {mem.device}")
    return z, mem


def _check_k(k: Any, M: int) -> int:
    if k is None:
        return M
    if isinstance(k, bool):
        raise ValueError(f"k must be an integer in [1, M] = [1, {M}], got {k!r}")
    try:
        k = operator.index(k)
    except TypeError as exc:
        raise ValueError(f"k must be an integer in [1, M] = [1, {M}], got {k!r}") from exc
    if not 1 <= k <= M:
        raise ValueError(f"k must be in [1, M] = [1, {M}], got {k}")
    return k


def _check_finite(t: torch.Tensor, name: str) -> None:
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or infinite values")


def _check_draws(u: Any, r: Any, B: int, M: int, check_values: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    u = _tensor(u, "u")
    r = _tensor(r, "r")
    if u.ndim != 1 or u.shape[0] != B:
        raise ValueError(f"u must be 1-D with one uniform draw per instance ({B}), got shape {list(u.shape)}")
    if r.ndim != 1 or r.shape[0] != B:
        raise ValueError(f"r must be 1-D with one random slot per instance ({B}), got shape {list(r.shape)}")
    if u.dtype == torch.bool or u.is_complex():
        raise ValueError(f"u must be real (uniform draws in [0, 1)), got {u.dtype}")
    if r.dtype == torch.bool or r.dtype.is_floating_point or r.is_complex():
        raise ValueError(f"r must be an integer tensor of slot indices, got {r.dtype}")
    if u.dtype is not torch.float64 or not u.is_cpu:
        u = u.to("cpu", torch.float64)
    if r.dtype is not torch.int64 or not r.is_cpu:
        r = r.to("cpu", torch.int64)
    if not check_values:  # the C++ kernel checks finiteness and range itself
        return u, r
    _check_finite(u, "u")
    if B and (int(r.min()) < 0 or int(r.max()) >= M):
        bad = int(r[(r < 0) | (r >= M)][0])
        raise ValueError(f"r contains {bad}, which is not a slot index in [0, {M})")
    return u, r


def _check_psi(psi: float) -> float:
    psi = float(psi)
    if not 0.0 <= psi <= 1.0:
        raise ValueError(f"psi must be in [0, 1], got {psi}")
    return psi


def _check_phi(phi: float) -> float:
    phi = float(phi)
    if not phi >= 0.0:
        raise ValueError(f"phi must be >= 0, got {phi}")
    return phi


def _check_mean(mean: Any, mem: torch.Tensor) -> torch.Tensor | None:
    if mean is None:
        return None
    if not isinstance(mean, torch.Tensor) or mean.dtype != torch.float64 or mean.shape != (mem.shape[1],):
        raise ValueError(f"mean must be a float64 tensor of shape [D] = [{mem.shape[1]}] (see normalized_mean)")
    if mean.device != mem.device:
        raise ValueError(f"mean must be on the memory's device {mem.device}, got {mean.device}")
    return mean


def _use_kernel(*tensors: torch.Tensor) -> bool:
    if BACKEND != "cpp":
        return False
    for t in tensors:
        if t.dtype is not torch.float32 or not t.is_cpu:
            return False
    return True


def _fast(*tensors: Any) -> bool:
    """CPU float32 contiguous tensors without grad: handed straight to the kernel, which validates them."""
    if BACKEND != "cpp":
        return False
    for t in tensors:
        if (
            not isinstance(t, torch.Tensor) or t.dtype is not torch.float32 or not t.is_cpu
            or t.requires_grad or not t.is_contiguous()
        ):
            return False
    return True


def _fast_draws(u: Any, r: Any) -> bool:
    return (
        isinstance(u, torch.Tensor) and (u.dtype is torch.float64 or u.dtype is torch.float32) and u.is_cpu
        and not u.requires_grad and u.is_contiguous()
        and isinstance(r, torch.Tensor) and (r.dtype is torch.int64 or r.dtype is torch.int32) and r.is_cpu
        and r.is_contiguous()
    )


def _index(k: Any) -> int:
    if isinstance(k, bool):
        raise ValueError(f"k must be an integer, got {k!r}")
    try:
        return operator.index(k)
    except TypeError as exc:
        raise ValueError(f"k must be an integer, got {k!r}") from exc


def _np(t: torch.Tensor):
    """Zero-copy numpy view of a CPU tensor (a contiguous copy only when it is not contiguous)."""
    if t.requires_grad:
        t = t.detach()
    if not t.is_contiguous():
        t = t.contiguous()
    return t.numpy()


def _bump_version(t: torch.Tensor) -> None:
    bump = getattr(torch.autograd.graph, "increment_version", None)
    if bump is not None:
        bump(t)


# ----------------------------------------------------------------------------------------------------
# Public API (dispatch)


def similarity(z: torch.Tensor, mem: torch.Tensor, metric: str = "cosine") -> torch.Tensor:
    """Similarity of every feature to every memory slot, ``[B, M]`` (Eq. 2; see the module docstring)."""
    if _fast(z, mem):
        return torch.from_numpy(_kernel.similarity(z.numpy(), mem.numpy(), metric))
    _check_metric(metric)
    z, mem = _check_pair(z, mem)
    if _use_kernel(z, mem):
        return torch.from_numpy(_kernel.similarity(_np(z), _np(mem), metric))
    _check_finite(z, "z")
    _check_finite(mem, "mem")
    with torch.no_grad():
        return similarity_torch(z.detach(), mem.detach(), metric)


def topk(z: torch.Tensor, mem: torch.Tensor, k: int, metric: str = "cosine") -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` most similar slots of each feature: ``(values [B, k], indices [B, k] int64)``, sorted
    descending, ties broken by the lower slot index (the top-k of Eq. 4)."""
    _check_metric(metric)
    z, mem = _check_pair(z, mem)
    k = _check_k(k, mem.shape[0])
    if _use_kernel(z, mem):
        values, indices = _kernel.topk(_np(z), _np(mem), k, metric)
        return torch.from_numpy(values), torch.from_numpy(indices)
    _check_finite(z, "z")
    _check_finite(mem, "mem")
    with torch.no_grad():
        return topk_torch(z.detach(), mem.detach(), k, metric)


def weights(
    z: torch.Tensor, mem: torch.Tensor, k: int | None = None, phi: float = 1.0, metric: str = "cosine", *,
    mean: torch.Tensor | None = None,
) -> torch.Tensor:
    """Auxiliary instance weights ``τ`` (Eqs. 4–5), ``[B]``, detached.

    ``S_i`` is the mean of the top-``k`` similarities of ``z_i`` to the memory (``k=None``: all M slots,
    the paper's mean, Eq. 4) and ``τ_i = min(φ, max(0, S_i))`` (Eq. 5). With the cosine metric and
    ``k = M`` this costs O(M·D + B·D) (``S_i = ẑ_i · mean_j(â_j)``), or O(B·D) given ``mean``, the float64
    mean of the normalised memory (:func:`normalized_mean`, kept current by :class:`MeanTracker`).
    """
    if mean is None and _fast(z, mem):  # hot path of a training step: the kernel validates
        return torch.from_numpy(
            _kernel.weights(z.numpy(), mem.numpy(), None if k is None else _index(k), _check_phi(phi), metric)
        )
    _check_metric(metric)
    z, mem = _check_pair(z, mem)
    k = _check_k(k, mem.shape[0])
    phi = _check_phi(phi)
    mean = _check_mean(mean, mem)
    if mean is not None and not (metric == "cosine" and k == mem.shape[0]):
        raise ValueError("a precomputed mean only applies to metric='cosine' with k = M")
    if _use_kernel(z, mem):
        return torch.from_numpy(
            _kernel.weights(_np(z), _np(mem), k, phi, metric, None if mean is None else _np(mean))
        )
    _check_finite(z, "z")
    if mean is None:
        _check_finite(mem, "mem")
    else:
        _check_finite(mean, "mean")
    with torch.no_grad():
        return weights_torch(z.detach(), mem.detach(), k, phi, metric, mean)


def replace(
    mem: torch.Tensor, z: torch.Tensor, u: Any, r: Any, psi: float = 0.8, metric: str = "cosine", *,
    mean: torch.Tensor | None = None,
) -> torch.Tensor:
    """Write the batch ``z`` into the memory, in place (Eq. 3, Algorithm 1 lines 4–12); returns the slots.

    For ``i`` in batch order: if ``u[i] < psi`` the slot is ``argmin_j F(z_i, A_j)`` over the memory as
    left by instances ``0..i-1`` (lowest index on ties), else ``r[i]``; then ``A[slot] = z_i``. ``u`` are
    uniform draws in [0, 1) and ``r`` random slot indices in [0, M), both ``[B]`` and drawn by the caller.
    Returns the chosen slots, int64 ``[B]`` on ``mem``'s device. ``mean`` (float64 ``[D]``, optional) is
    the mean of the normalised memory, updated in place in O(D) per replacement.
    """
    if mean is None and _fast(mem, z) and _fast_draws(u, r):  # hot path: the kernel validates
        slots = _kernel.replace(mem.numpy(), z.numpy(), u.numpy(), r.numpy(), _check_psi(psi), metric)
        _bump_version(mem)
        return torch.from_numpy(slots)
    _check_metric(metric)
    if not isinstance(mem, torch.Tensor):
        raise ValueError(f"mem must be a torch tensor (it is updated in place), got {type(mem).__name__}")
    z, mem = _check_pair(z, mem)
    B, M = z.shape[0], mem.shape[0]
    psi = _check_psi(psi)
    mean = _check_mean(mean, mem)
    kernel = _use_kernel(z, mem) and (mean is None or mean.is_contiguous())
    u, r = _check_draws(u, r, B, M, check_values=not kernel)
    if kernel:
        target = mem.detach() if mem.is_contiguous() else mem.detach().contiguous()
        slots = _kernel.replace(
            target.numpy(), _np(z), _np(u), _np(r), psi, metric, None if mean is None else _np(mean)
        )
        if target.data_ptr() != mem.data_ptr():
            with torch.no_grad():
                mem.copy_(target)
        _bump_version(mem)
        return torch.from_numpy(slots)
    _check_finite(z, "z")
    _check_finite(mem, "mem")
    with torch.no_grad():
        return replace_torch(mem, z.detach(), u, r, psi, metric, mean)


def normalized_mean(mem: torch.Tensor) -> torch.Tensor:
    """``mean_j A_j / ‖A_j‖`` (zero rows count as 0), float64 ``[D]`` on ``mem``'s device."""
    mem = _tensor(mem, "mem")
    _check_pair(mem[:0], mem)
    if _use_kernel(mem):
        return torch.from_numpy(_kernel.normalized_mean(_np(mem)))
    _check_finite(mem, "mem")
    with torch.no_grad():
        return normalized_mean_torch(mem.detach())


class MeanTracker:
    """A memory together with the mean of its normalised slots, ``mean_j(â_j)``, kept current.

    With the cosine metric and ``k = M`` (the paper's mean, Eq. 4) the auxiliary similarity is
    ``S_i = ẑ_i · mean_j(â_j)``, so :meth:`weights` costs O(B·D) and :meth:`replace` updates the mean in
    O(D) per replacement (DESIGN.md, "two facts"). The float64 mean is recomputed from scratch every
    ``refresh`` replacements (default ``max(64·M, 4096)``, so amortised O(D) too) to keep rounding drift
    bounded; call :meth:`recompute` after changing the memory by other means.
    """

    def __init__(self, memory: torch.Tensor, *, refresh: int | None = None):
        self.memory = memory
        self.refresh = int(refresh) if refresh is not None else max(64 * int(memory.shape[0]), 4096)
        if self.refresh < 1:
            raise ValueError(f"refresh must be >= 1, got {refresh}")
        self.mean = normalized_mean(memory)
        self._replaced = 0

    def recompute(self) -> None:
        self.mean = normalized_mean(self.memory)
        self._replaced = 0

    def replace(self, z: torch.Tensor, u: Any, r: Any, psi: float = 0.8, metric: str = "cosine") -> torch.Tensor:
        """:func:`replace` on the tracked memory, updating the mean."""
        slots = replace(self.memory, z, u, r, psi, metric, mean=self.mean)
        self._replaced += int(slots.shape[0])
        if self._replaced >= self.refresh:
            self.recompute()
        return slots

    def weights(self, z: torch.Tensor, k: int | None = None, phi: float = 1.0, metric: str = "cosine") -> torch.Tensor:
        """:func:`weights` against the tracked memory (O(B·D) for cosine with k = M)."""
        if metric == "cosine" and (k is None or k == self.memory.shape[0]):
            return weights(z, self.memory, k, phi, metric, mean=self.mean)
        return weights(z, self.memory, k, phi, metric)
