"""The pure-torch twin of MAMT's C++ memory kernel ``mtl._memory`` (any device, any floating dtype).

Yan et al., IEEE TII 2022 (MAMT): similarity (Eq. 2), sequential replacement (Eq. 3 / Algorithm 1 lines 4–12) and
auxiliary weights (Eqs. 4–5), computed as :mod:`mtl.memory` documents them. :mod:`mtl.memory` checks the inputs
and sends CPU float32 to the kernel, everything else here; the tests use these functions as the reference.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch


def _norms(x: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(x, dim=1)


def _inv(n: torch.Tensor) -> torch.Tensor:
    return torch.where(n > 0, 1.0 / torch.where(n > 0, n, torch.ones_like(n)), torch.zeros_like(n))


def similarity_torch(z: torch.Tensor, mem: torch.Tensor, metric: str = "cosine") -> torch.Tensor:
    """``F(z_i, A_j)`` for all pairs (Eq. 2), ``[B, M]``, in torch."""
    d = z @ mem.T
    nz, na = _norms(z), _norms(mem)
    if metric == "cosine":
        return d * _inv(nz)[:, None] * _inv(na)[None, :]
    m = torch.maximum(nz[:, None], na[None, :])
    return torch.where(m > 0, d / torch.where(m > 0, m, torch.ones_like(m)), torch.zeros_like(d))


def topk_torch(z: torch.Tensor, mem: torch.Tensor, k: int, metric: str = "cosine") -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` largest similarities of each row, descending, ties by lower index (stable sort)."""
    values, indices = torch.sort(similarity_torch(z, mem, metric), dim=1, descending=True, stable=True)
    return values[:, :k], indices[:, :k]


def normalized_mean_torch(mem: torch.Tensor) -> torch.Tensor:
    """``mean_j A_j / ‖A_j‖`` in float64 (zero rows count as 0), ``[D]``."""
    m = mem.to(torch.float64)
    return (m * _inv(_norms(m))[:, None]).mean(0)


def weights_torch(
    z: torch.Tensor, mem: torch.Tensor, k: int | None = None, phi: float = 1.0, metric: str = "cosine",
    mean: torch.Tensor | None = None,
) -> torch.Tensor:
    """``τ_i = min(φ, max(0, S_i))`` with ``S_i`` the mean of the top-k similarities (Eqs. 4–5), in torch."""
    M = mem.shape[0]
    k = M if k is None else k
    if mean is not None:  # cosine, k = M: S_i = ẑ_i · mean_j(â_j)
        zd = z.to(torch.float64)
        S = (zd @ mean.to(z.device)) * _inv(_norms(zd))
    elif k == M:
        S = similarity_torch(z, mem, metric).mean(1)
    else:
        S = topk_torch(z, mem, k, metric)[0].mean(1)
    return torch.clamp(S, min=0.0, max=phi).to(z.dtype)


@torch.no_grad()
def replace_torch(
    mem: torch.Tensor, z: torch.Tensor, u: torch.Tensor, r: torch.Tensor, psi: float = 0.8,
    metric: str = "cosine", mean: torch.Tensor | None = None,
) -> torch.Tensor:
    """Sequential replacement (Eq. 3, Alg. 1 lines 4–12) in torch, in place on ``mem``; returns the slots.

    Computes the B×M and B×B similarities once; after slot j takes z_i only column j changes, and its new
    values are column i of the B×B similarities, so the loop runs on-device without host syncs.
    """
    B, M = z.shape[0], mem.shape[0]
    S = similarity_torch(z, mem, metric)
    Szz = similarity_torch(z, z, metric)  # Szz[:, i] = F(z_., z_i)
    take_min = (u < psi).tolist()
    r_dev = r.to(mem.device)
    slots = torch.empty(B, dtype=torch.int64, device=mem.device)
    if mean is not None:
        zn = z.to(torch.float64) * _inv(_norms(z.to(torch.float64)))[:, None]
    for i in range(B):
        slot = torch.argmin(S[i]) if take_min[i] else r_dev[i]
        slots[i] = slot
        if mean is not None:
            old = mem[slot].to(torch.float64)
            mean += (zn[i] - old * _inv(torch.linalg.vector_norm(old)[None])[0]) / M
        mem[slot] = z[i]
        S[:, slot] = Szz[:, i]
    return slots


torch_impl = SimpleNamespace(
    similarity=similarity_torch, topk=topk_torch, weights=weights_torch, replace=replace_torch,
    normalized_mean=normalized_mean_torch,
)
"""The pure-torch implementation, grouped (``torch_impl.similarity(z, mem)`` ...)."""
