"""MAMT memory operations (mtl.memory and the C++ kernel mtl._memory).

The kernel is checked against the pure-torch implementation and against a plain numpy re-statement of the
paper's equations (Yan et al., IEEE TII 2022: Eq. 2 similarity, Eq. 3 / Alg. 1 sequential replacement,
Eqs. 4-5 weights), with a Python loop over the batch for the replacement.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mtl.memory as mm

kernel = mm._kernel
needs_kernel = pytest.mark.skipif(mm.BACKEND != "cpp", reason="C++ kernel not built or disabled")
METRICS = ["cosine", "maxnorm"]


# ----------------------------------------------------------------------------------------------------
# The equations, restated in numpy (float64).


def np_similarity(z: np.ndarray, A: np.ndarray, metric: str) -> np.ndarray:
    """Eq. 2: cosine z.a/(|z||a|) (0 if a norm is 0) or maxnorm z.a/max(|z|, |a|) (0 if both are 0)."""
    z, A = np.asarray(z, np.float64), np.asarray(A, np.float64)
    d = z @ A.T
    nz, na = np.linalg.norm(z, axis=1), np.linalg.norm(A, axis=1)
    den = np.outer(nz, na) if metric == "cosine" else np.maximum.outer(nz, na)
    return np.where(den > 0, d / np.where(den > 0, den, 1.0), 0.0)


def np_topk(z, A, k, metric):
    S = np_similarity(z, A, metric)
    idx = np.array([sorted(range(A.shape[0]), key=lambda j: (-S[i, j], j))[:k] for i in range(S.shape[0])])
    idx = idx.reshape(S.shape[0], k)
    return np.take_along_axis(S, idx, axis=1), idx


def np_weights(z, A, k, phi, metric, S=None):
    """Eqs. 4-5: S_i = mean of the top-k similarities, tau_i = min(phi, max(0, S_i))."""
    S = np_similarity(z, A, metric) if S is None else S
    k = A.shape[0] if k is None else k
    top = -np.sort(-S, axis=1)[:, :k]
    return np.minimum(phi, np.maximum(0.0, top.mean(axis=1)))


def np_replace(A, z, u, r, psi, metric):
    """Eq. 3 / Alg. 1 lines 4-12, literally: a Python loop, each instance against the current memory."""
    A = np.array(A, dtype=np.float32, copy=True)
    slots = []
    for i in range(z.shape[0]):
        if u[i] < psi:
            s = np_similarity(z[i : i + 1], A, metric)[0]
            slot = int(np.argmin(s))  # first minimum = lowest index on ties
        else:
            slot = int(r[i])
        A[slot] = z[i]
        slots.append(slot)
    return A, np.array(slots, dtype=np.int64)


def check_replace(A0, z, u, r, psi, metric, slots, A_out, tol=2e-5):
    """Replacement semantics up to float rounding: every argmin choice is a minimum within `tol` of the
    memory as left by the earlier instances, every other choice is r[i], and the memory ends as written."""
    A = np.array(A0, dtype=np.float32, copy=True)
    scale = max(1.0, float(np.abs(np.asarray(z, np.float64)).max(initial=0)), float(np.abs(A).max(initial=0)))
    for i in range(z.shape[0]):
        if u[i] < psi:
            s = np_similarity(z[i : i + 1], A, metric)[0]
            t = tol * (scale * z.shape[1] if metric == "maxnorm" else 1.0)
            assert s[slots[i]] <= s.min() + t, (i, slots[i], s)
        else:
            assert slots[i] == r[i]
        A[slots[i]] = z[i]
    np.testing.assert_array_equal(np.asarray(A_out), A)


def close(a, b, metric="cosine", scale=1.0, tol=1e-5):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    atol = tol * (max(1.0, scale) if metric == "maxnorm" else 1.0)
    np.testing.assert_allclose(a, b, rtol=tol, atol=atol)


def data(seed, B, M, D, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, D, generator=g) * scale, torch.randn(M, D, generator=g) * scale


def draws(seed, B, M):
    g = torch.Generator().manual_seed(seed + 7)
    return torch.rand(B, generator=g, dtype=torch.float64), torch.randint(0, M, (B,), generator=g)


@pytest.fixture(params=kernel.available_isas() if kernel is not None else ["-"])
def isa(request):
    """Run a test once per instruction-set variant this CPU has (sse2, avx2, avx512 / neon)."""
    if kernel is None:
        yield None
        return
    before = kernel.isa()
    kernel.set_isa(request.param)
    yield request.param
    kernel.set_isa(before)


# Includes D not a multiple of any vector width, M < B, and (5, 300, 1000), whose memory spans several
# cache panels of the kernel's blocked product.
SHAPES = [
    (1, 1, 1), (1, 5, 3), (4, 1, 7), (5, 3, 8), (32, 32, 16), (7, 40, 17), (32, 160, 33), (3, 11, 100), (5, 300, 1000)
]


# ----------------------------------------------------------------------------------------------------
# Similarity, top-k, weights


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("B,M,D", SHAPES)
def test_similarity_matches_equation_and_torch(isa, metric, B, M, D):
    z, A = data(B * 100 + M, B, M, D, scale=2.0)
    S = mm.similarity(z, A, metric)
    assert S.shape == (B, M) and S.dtype == torch.float32
    scale = float(max(z.norm(dim=1).max(), A.norm(dim=1).max()))
    close(S, np_similarity(z.numpy(), A.numpy(), metric), metric, scale)
    close(S, mm.similarity_torch(z.double(), A.double(), metric), metric, scale)


@pytest.mark.parametrize("metric", METRICS)
def test_zero_vectors_have_zero_similarity(isa, metric):
    z = torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 2.0]])
    A = torch.tensor([[0.0, 0.0, 0.0], [3.0, 0.0, 4.0], [0.0, 0.0, 0.0]])
    S = mm.similarity(z, A, metric)
    assert torch.equal(S[0], torch.zeros(3))
    assert S[1, 0] == 0 and S[1, 2] == 0
    expected = 11 / 15 if metric == "cosine" else 11 / 5  # z.a = 11, |z| = 3, |a| = 5
    assert S[1, 1].item() == pytest.approx(expected, rel=1e-6)
    assert torch.isfinite(mm.weights(z, A, metric=metric)).all()


def test_maxnorm_is_the_papers_formula_and_cosine_on_unit_vectors():
    z = torch.tensor([[2.0, 0.0]])
    A = torch.tensor([[1.0, 0.0], [0.0, 3.0], [4.0, 0.0]])
    assert mm.similarity(z, A, "maxnorm").tolist() == [[1.0, 0.0, 2.0]]  # z.a / max(|z|, |a|)
    u = torch.nn.functional.normalize(torch.randn(6, 9), dim=1)
    v = torch.nn.functional.normalize(torch.randn(5, 9), dim=1)
    close(mm.similarity(u, v, "maxnorm"), mm.similarity(u, v, "cosine"))


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("B,M,D", SHAPES)
def test_topk_matches_equation_and_torch(isa, metric, B, M, D):
    z, A = data(B * 7 + M, B, M, D)
    for k in sorted({1, min(3, M), M}):
        values, indices = mm.topk(z, A, k, metric)
        assert values.shape == indices.shape == (B, k) and indices.dtype == torch.int64
        ref_v, ref_i = np_topk(z.numpy(), A.numpy(), k, metric)
        np.testing.assert_array_equal(indices.numpy(), ref_i)
        close(values, ref_v, metric, float(A.norm(dim=1).max()))
        tv, ti = mm.topk_torch(z, A, k, metric)
        assert torch.equal(indices, ti)


def test_topk_ties_are_broken_by_lower_index(isa):
    A = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
    z = torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
    _, idx = mm.topk(z, A, 5)
    assert idx.tolist() == [[1, 3, 0, 2, 4], [0, 2, 1, 3, 4], [0, 1, 2, 3, 4]]
    _, idx = mm.topk(z, A, 1)
    assert idx.tolist() == [[1], [0], [0]]


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("B,M,D", SHAPES)
def test_weights_match_equation_and_torch(isa, metric, B, M, D):
    z, A = data(B * 13 + M, B, M, D)
    # Rows of various norms (the maxnorm k = M path sorts by norm), shared direction for positive S.
    g = torch.Generator().manual_seed(D)
    A = (A + 0.8) * torch.rand(M, 1, generator=g).mul(3).add(0.1)
    z = (z + 0.8) * torch.rand(B, 1, generator=g).mul(3).add(0.1)
    scale = float(A.norm(dim=1).max())
    S = np_similarity(z.numpy(), A.numpy(), metric)
    for k in sorted({None, 1, min(3, M), M}, key=lambda v: -1 if v is None else v):
        for phi in (1.0, 0.05, float("inf")):
            tau = mm.weights(z, A, k, phi, metric)
            assert tau.shape == (B,) and tau.dtype == torch.float32
            close(tau, np_weights(z.numpy(), A.numpy(), k, phi, metric, S), metric, scale)
        close(mm.weights(z, A, k, 0.5, metric), mm.weights_torch(z.double(), A.double(), k, 0.5, metric), metric, scale)


def test_weights_clamp_negative_similarity_to_zero_and_cap_at_phi(isa):
    A = torch.tensor([[1.0, 0.0], [1.0, 0.1]])
    z = torch.tensor([[-1.0, 0.0], [1.0, 0.05], [0.0, 1.0]])
    tau = mm.weights(z, A, phi=0.5)
    assert tau[0] == 0.0 and tau[1] == 0.5 and 0 < tau[2] < 0.5
    assert mm.weights(z, A, phi=0.0).tolist() == [0.0, 0.0, 0.0]


def test_weights_with_precomputed_mean(isa):
    z, A = data(3, 16, 50, 24)
    mean = mm.normalized_mean(A)
    assert mean.dtype == torch.float64 and mean.shape == (24,)
    close(mean, mm.normalized_mean_torch(A), tol=1e-6)
    close(mm.weights(z, A, mean=mean), mm.weights(z, A))
    with pytest.raises(ValueError, match="mean"):
        mm.weights(z, A, k=3, mean=mean)
    with pytest.raises(ValueError, match="mean"):
        mm.weights(z, A, metric="maxnorm", mean=mean)


# ----------------------------------------------------------------------------------------------------
# Replacement


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("psi", [0.0, 0.5, 0.8, 1.0])
@pytest.mark.parametrize("B,M,D", [(1, 1, 4), (1, 9, 5), (8, 1, 3), (32, 5, 8), (32, 32, 64), (32, 160, 100),
                                   (9, 224, 17)])
def test_replace_matches_sequential_loop(isa, metric, psi, B, M, D):
    z, A = data(B + M + D, B, M, D)
    u, r = draws(B * M, B, M)
    A_ref, slots_ref = np_replace(A.numpy(), z.numpy(), u.numpy(), r.numpy(), psi, metric)
    mem = A.clone()
    ptr = mem.data_ptr()
    slots = mm.replace(mem, z, u, r, psi, metric)
    assert mem.data_ptr() == ptr  # in place
    assert slots.dtype == torch.int64 and slots.shape == (B,)
    np.testing.assert_array_equal(slots.numpy(), slots_ref)
    np.testing.assert_array_equal(mem.numpy(), A_ref)
    # The torch implementation agrees too.
    mem_t = A.clone()
    assert torch.equal(mm.replace_torch(mem_t, z, u, r, psi, metric), slots)
    assert torch.equal(mem_t, mem)


@pytest.mark.parametrize("metric", METRICS)
def test_large_memory_against_torch_float64(isa, metric):
    z, A = data(17, 32, 3000, 64)
    A = A * torch.rand(3000, 1, generator=torch.Generator().manual_seed(1)).add(0.2)  # norms vary
    zd, Ad = z.double(), A.double()
    scale = float(A.norm(dim=1).max())
    close(mm.similarity(z, A, metric), mm.similarity_torch(zd, Ad, metric), metric, scale)
    for k in (None, 1, 50):
        close(mm.weights(z, A, k, 1.0, metric), mm.weights_torch(zd, Ad, k, 1.0, metric), metric, scale)
    v, i = mm.topk(z, A, 10, metric)
    tv, ti = mm.topk_torch(zd, Ad, 10, metric)
    close(v, tv, metric, scale)
    assert torch.equal(i, ti)
    u, r = draws(17, 32, 3000)
    mem, mem_d = A.clone(), Ad.clone()
    assert torch.equal(mm.replace(mem, z, u, r, 0.8, metric), mm.replace(mem_d, zd, u, r, 0.8, metric))
    assert torch.equal(mem.double(), mem_d)


def test_replace_is_sequential():
    # Instance 0 takes slot 1 (least similar to [1, 0]); instance 1 then sees two copies of [1, 0] and takes
    # slot 0 (tie -> lowest index). A one-shot argmin against the initial memory would pick slot 1 twice.
    mem = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    slots = mm.replace(mem, z, torch.zeros(2), torch.zeros(2, dtype=torch.int64), psi=1.0)
    assert slots.tolist() == [1, 0]
    assert mem.tolist() == [[1.0, 0.0], [1.0, 0.0]]


def test_replace_random_branch_uses_r_and_later_instances_see_it(isa):
    mem = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    z = torch.tensor([[0.0, -1.0], [0.0, 1.0]])
    u = torch.tensor([0.9, 0.1])  # instance 0: random slot r[0] = 0; instance 1: argmin
    slots = mm.replace(mem, z, u, torch.tensor([0, 2]), psi=0.8)
    # After instance 0, mem = [[0,-1],[0,1],[-1,0]]; [0,1] is least similar to slot 0.
    assert slots.tolist() == [0, 0]
    assert mem.tolist() == [[0.0, 1.0], [0.0, 1.0], [-1.0, 0.0]]


@pytest.mark.parametrize("metric", METRICS)
def test_replace_ties_duplicates_and_zero_vectors(isa, metric):
    # Integer-valued vectors: every dot product is exact, so ties between duplicate slots are exact ties.
    g = np.random.default_rng(5)
    base = g.integers(-3, 4, size=(4, 6)).astype(np.float32)
    A = np.concatenate([base, base, np.zeros((2, 6), np.float32), base[:2]])  # duplicates and zero rows
    z = np.concatenate([base[[2, 0]], np.zeros((1, 6), np.float32), base[[1, 1, 3]], -base[[0]]])
    B, M = z.shape[0], A.shape[0]
    for psi in (1.0, 0.6):
        u = np.linspace(0, 0.99, B)[::-1].copy()
        r = g.integers(0, M, size=B)
        A_ref, slots_ref = np_replace(A, z, u, r, psi, metric)
        mem = torch.from_numpy(A.copy())
        slots = mm.replace(mem, torch.from_numpy(z), torch.from_numpy(u), torch.from_numpy(r), psi, metric)
        np.testing.assert_array_equal(slots.numpy(), slots_ref)
        np.testing.assert_array_equal(mem.numpy(), A_ref)


def test_replace_with_more_instances_than_slots(isa):
    z, A = data(11, 40, 3, 12)
    u, r = draws(11, 40, 3)
    for metric in METRICS:
        A_ref, slots_ref = np_replace(A.numpy(), z.numpy(), u.numpy(), r.numpy(), 0.8, metric)
        mem = A.clone()
        slots = mm.replace(mem, z, u, r, 0.8, metric)
        np.testing.assert_array_equal(slots.numpy(), slots_ref)
        np.testing.assert_array_equal(mem.numpy(), A_ref)


def test_replace_is_deterministic_across_runs_and_instruction_sets():
    z, A = data(21, 32, 160, 384)
    u, r = draws(21, 32, 160)
    results = []
    isas = kernel.available_isas() if kernel is not None else ["-"]
    before = kernel.isa() if kernel is not None else None
    try:
        for name in isas:
            if kernel is not None:
                kernel.set_isa(name)
            for _ in range(2):
                mem = A.clone()
                results.append((mm.replace(mem, z, u, r), mem))
    finally:
        if kernel is not None:
            kernel.set_isa(before)
    for slots, mem in results[1:]:
        assert torch.equal(slots, results[0][0])
        assert torch.equal(mem, results[0][1])


def test_replace_when_z_is_a_view_of_the_memory(isa):
    z0, A = data(4, 0, 20, 10)
    mem = A.clone()
    z = mem[3:9]  # aliases slots 3..8, which the replacement overwrites
    u, r = draws(4, 6, 20)
    A_ref, slots_ref = np_replace(A.numpy(), A.numpy()[3:9].copy(), u.numpy(), r.numpy(), 0.5, "cosine")
    slots = mm.replace(mem, z, u, r, 0.5)
    np.testing.assert_array_equal(slots.numpy(), slots_ref)
    np.testing.assert_array_equal(mem.numpy(), A_ref)


def test_replace_on_non_contiguous_memory_writes_through(isa):
    z, A = data(8, 10, 30, 16)
    big = torch.zeros(30, 20)
    big[:, :16] = A
    mem = big[:, :16]
    assert not mem.is_contiguous()
    u, r = draws(8, 10, 30)
    A_ref, slots_ref = np_replace(A.numpy(), z.numpy(), u.numpy(), r.numpy(), 0.8, "cosine")
    slots = mm.replace(mem, z, u, r)
    np.testing.assert_array_equal(slots.numpy(), slots_ref)
    np.testing.assert_array_equal(big[:, :16].numpy(), A_ref)
    assert big[:, 16:].abs().sum() == 0


def test_replace_accepts_lists_and_numpy_draws(isa):
    z, A = data(2, 3, 4, 5)
    m1, m2 = A.clone(), A.clone()
    s1 = mm.replace(m1, z, [0.1, 0.9, 0.5], [1, 2, 3])
    s2 = mm.replace(m2, z, np.array([0.1, 0.9, 0.5], np.float32), np.array([1, 2, 3], np.int32))
    assert torch.equal(s1, s2) and torch.equal(m1, m2)


def test_mean_tracker_keeps_the_normalised_mean(isa):
    z, A = data(9, 32, 64, 20)
    tracker = mm.MeanTracker(A.clone(), refresh=10**9)
    for step in range(5):
        zs, _ = data(100 + step, 32, 1, 20)
        u, r = draws(step, 32, 64)
        tracker.replace(zs, u, r)
        close(tracker.mean, mm.normalized_mean(tracker.memory), tol=1e-9)
        close(tracker.weights(z), mm.weights(z, tracker.memory))
        close(tracker.weights(z, k=5), mm.weights(z, tracker.memory, k=5))
    # torch path keeps the same mean
    t2 = mm.MeanTracker(A.clone().double(), refresh=10**9)
    u, r = draws(0, 32, 64)
    t2.replace(z.double(), u, r)
    close(t2.mean, mm.normalized_mean_torch(t2.memory), tol=1e-9)


def test_threads_release_the_gil_and_give_the_same_result():
    z, A = data(31, 32, 2000, 128)
    u, r = draws(31, 32, 2000)
    expected = A.clone()
    slots_expected = mm.replace(expected, z, u, r)
    mems = [A.clone() for _ in range(4)]
    out = [None] * 4

    def work(i):
        out[i] = mm.replace(mems[i], z, u, r)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        assert torch.equal(out[i], slots_expected) and torch.equal(mems[i], expected)


# ----------------------------------------------------------------------------------------------------
# Dispatch


@pytest.mark.skipif(kernel is None, reason="the C++ memory kernel is not built")
def test_mtl_memory_isa_chooses_an_available_instruction_set_and_ignores_others():
    def isa_with(value: str) -> str:
        env = {**os.environ, "MTL_MEMORY_ISA": value}
        code = "from mtl import _memory; print(_memory.isa())"
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                              check=True).stdout.strip()

    available = kernel.available_isas()
    assert isa_with(available[0]) == available[0]  # the narrowest, when asked for
    assert isa_with("no-such-isa") == available[-1]  # an unknown name leaves the widest


def test_backend_and_dispatch():
    assert mm.BACKEND in ("cpp", "torch")
    if kernel is not None and os.environ.get("MTL_MEMORY_BACKEND", "") != "torch":
        assert mm.BACKEND == "cpp"
        assert kernel.isa() in kernel.available_isas()
    # float64 goes to the torch implementation and agrees with float32 (kernel).
    z, A = data(6, 8, 20, 12)
    u, r = draws(6, 8, 20)
    close(mm.similarity(z.double(), A.double()), mm.similarity(z, A))
    close(mm.weights(z.double(), A.double(), k=4), mm.weights(z, A, k=4))
    m32, m64 = A.clone(), A.clone().double()
    assert torch.equal(mm.replace(m32, z, u, r), mm.replace(m64, z.double(), u, r))
    assert torch.equal(m32.double(), m64)


@pytest.mark.slow
def test_environment_forces_torch_and_import_mtl_stays_light():
    code = (
        "import sys, mtl; assert 'mtl.memory' not in sys.modules and 'mtl._memory' not in sys.modules;"
        "import mtl.memory as mm, torch; print(mm.BACKEND);"
        "z = torch.randn(4, 8); a = torch.randn(6, 8); print(mm.weights(z, a).shape[0])"
    )
    env = dict(os.environ, MTL_MEMORY_BACKEND="torch")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["torch", "4"]


@needs_kernel
def test_kernel_direct_numpy_interface():
    z = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    A = np.random.default_rng(1).standard_normal((4, 5)).astype(np.float32)
    S = kernel.similarity(z, A, "cosine")
    close(S, np_similarity(z, A, "cosine"))
    slots = kernel.replace(A, z, np.array([0.1, 0.2, 0.95]), np.array([0, 1, 2]), 0.8, "cosine")
    assert slots.dtype == np.int64 and slots.shape == (3,)
    assert kernel.ABI_VERSION >= 2
    with pytest.raises(ValueError, match="memory kernel: instruction set .no-such-isa. is not available on this CPU"):
        kernel.set_isa("no-such-isa")


# ----------------------------------------------------------------------------------------------------
# Bad input: ValueError, never a crash, memory untouched


def _bad_calls():
    z, A = data(0, 4, 6, 5)
    u, r = draws(0, 4, 6)
    nan_z = z.clone()
    nan_z[1, 2] = float("nan")
    inf_A = A.clone()
    inf_A[3, 0] = float("inf")
    huge_A = A.clone()
    huge_A[2] = 1e30  # finite, but the squared norm overflows float32
    return [
        ("nan z", lambda m: mm.replace(m, nan_z, u, r)),
        ("nan z sim", lambda m: mm.similarity(nan_z, m)),
        ("nan z weights", lambda m: mm.weights(nan_z, m)),
        ("inf mem", lambda m: mm.similarity(z, inf_A)),
        ("inf mem weights", lambda m: mm.weights(z, inf_A)),
        ("inf mem topk", lambda m: mm.topk(z, inf_A, 2)),
        ("huge mem", lambda m: mm.weights(z, huge_A, k=2)),
        ("int dtype", lambda m: mm.similarity(z.long(), m.long())),
        ("mixed dtype", lambda m: mm.similarity(z.double(), m)),
        ("D mismatch", lambda m: mm.replace(m, z[:, :4], u, r)),
        ("1-D z", lambda m: mm.weights(z[0], m)),
        ("3-D mem", lambda m: mm.similarity(z, m[None])),
        ("empty mem", lambda m: mm.weights(z, m[:0])),
        ("D = 0", lambda m: mm.similarity(z[:, :0], m[:, :0])),
        ("k = 0", lambda m: mm.topk(z, m, 0)),
        ("k > M", lambda m: mm.weights(z, m, 7)),
        ("k float", lambda m: mm.weights(z, m, 2.5)),
        ("psi 1.5", lambda m: mm.replace(m, z, u, r, psi=1.5)),
        ("psi < 0", lambda m: mm.replace(m, z, u, r, psi=-0.1)),
        ("psi nan", lambda m: mm.replace(m, z, u, r, psi=float("nan"))),
        ("phi < 0", lambda m: mm.weights(z, m, phi=-1.0)),
        ("phi nan", lambda m: mm.weights(z, m, phi=float("nan"))),
        ("r = M", lambda m: mm.replace(m, z, u, torch.tensor([0, 1, 6, 2]))),
        ("r < 0", lambda m: mm.replace(m, z, u, torch.tensor([0, -1, 2, 2]))),
        ("r float", lambda m: mm.replace(m, z, u, r.double())),
        ("u length", lambda m: mm.replace(m, z, u[:3], r)),
        ("r length", lambda m: mm.replace(m, z, u, r[:2])),
        ("u nan", lambda m: mm.replace(m, z, torch.tensor([0.1, float("nan"), 0.3, 0.4]), r)),
        ("metric", lambda m: mm.similarity(z, m, "euclid")),
        ("metric replace", lambda m: mm.replace(m, z, u, r, metric="dot")),
    ]


@pytest.mark.parametrize("name,call", _bad_calls(), ids=[n for n, _ in _bad_calls()])
def test_bad_input_raises_value_error(isa, name, call):
    _, A = data(0, 4, 6, 5)
    mem = A.clone()
    with pytest.raises(ValueError):
        call(mem)
    assert torch.equal(mem, A)  # nothing written


def test_bad_input_on_the_torch_path_raises_value_error():
    z, A = data(0, 4, 6, 5)
    z, A = z.double(), A.double()
    u, r = draws(0, 4, 6)
    bad = z.clone()
    bad[0, 0] = float("inf")
    mem = A.clone()
    for call in (
        lambda: mm.replace(mem, bad, u, r),
        lambda: mm.replace(mem, z, u, torch.tensor([0, 1, 2, 6])),
        lambda: mm.replace(mem, z, torch.tensor([0.1, float("nan"), 0.3, 0.4]), r),
        lambda: mm.weights(bad, mem),
        lambda: mm.topk(z, mem, 7),
        lambda: mm.similarity(z, mem, "nope"),
    ):
        with pytest.raises(ValueError):
            call()
    assert torch.equal(mem, A)


@needs_kernel
def test_kernel_rejects_bad_arrays_directly():
    z = np.ones((2, 3), np.float32)
    A = np.ones((4, 3), np.float32)
    u, r = np.zeros(2), np.zeros(2, np.int64)
    ro = A.copy()
    ro.setflags(write=False)
    for call in (
        lambda: kernel.similarity(z.astype(np.float64), A),
        lambda: kernel.similarity(z, np.asfortranarray(np.ones((4, 3), np.float32))),
        lambda: kernel.similarity(z, np.ones((8, 3), np.float32)[::2]),  # non-contiguous rows
        lambda: kernel.similarity([[1.0, 2.0, 3.0]], A),
        lambda: kernel.similarity(z, A[:0]),
        lambda: kernel.replace(ro, z, u, r, 0.8, "cosine"),
        lambda: kernel.replace(A, z, u.astype(np.int64), r, 0.8, "cosine"),
        lambda: kernel.replace(A, z, u, r.astype(np.float64), 0.8, "cosine"),
        lambda: kernel.replace(A, z, u, np.array([0, 2**63 + 5], np.uint64), 0.8, "cosine"),
        lambda: kernel.replace(A, z, u, r, 0.8, "cosine", np.zeros(2)),
        lambda: kernel.weights(z, A, 2, 1.0, "maxnorm", np.zeros(3)),
        lambda: kernel.topk(z, A, 5, "cosine"),
        lambda: kernel.topk(z, A, -1, "cosine"),
    ):
        with pytest.raises(ValueError):
            call()


# ----------------------------------------------------------------------------------------------------
# Property-based: random shapes, integer-valued data (exact dot products, many ties), zero rows.


@st.composite
def problems(draw):
    B = draw(st.integers(1, 9))
    M = draw(st.integers(1, 12))
    D = draw(st.integers(1, 40))
    seed = draw(st.integers(0, 2**31 - 1))
    g = np.random.default_rng(seed)
    kind = draw(st.sampled_from(["gauss", "int", "dup"]))
    if kind == "gauss":
        z = g.standard_normal((B, D)) * g.uniform(0.1, 3, (B, 1))
        A = g.standard_normal((M, D)) * g.uniform(0.1, 3, (M, 1))
    else:
        z = g.integers(-2, 3, (B, D)).astype(np.float64)
        A = g.integers(-2, 3, (M, D)).astype(np.float64)
        if kind == "dup":
            A = A[g.integers(0, M, M)]
            z = np.concatenate([A, z])[g.integers(0, M + B, B)]
    z[g.random(B) < 0.15] = 0
    A[g.random(M) < 0.15] = 0
    u = g.random(B)
    r = g.integers(0, M, B)
    return z.astype(np.float32), A.astype(np.float32), u, r, draw(st.sampled_from(METRICS)), draw(
        st.sampled_from([0.0, 0.5, 0.8, 1.0])
    ), draw(st.integers(1, M))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_property_all_operations(problem):
    z, A, u, r, metric, psi, k = problem
    zt, At = torch.from_numpy(z), torch.from_numpy(A)
    scale = float(max(np.linalg.norm(z, axis=1).max(), np.linalg.norm(A, axis=1).max()))
    close(mm.similarity(zt, At, metric), np_similarity(z, A, metric), metric, scale)
    close(mm.weights(zt, At, None, 1.0, metric), np_weights(z, A, None, 1.0, metric), metric, scale)
    close(mm.weights(zt, At, k, 0.7, metric), np_weights(z, A, k, 0.7, metric), metric, scale)
    values, indices = mm.topk(zt, At, k, metric)
    ref_v, _ = np_topk(z, A, k, metric)
    close(values, ref_v, metric, scale)
    S = mm.similarity(zt, At, metric)
    assert torch.equal(torch.gather(S, 1, indices), values)
    assert (values[:, :-1] >= values[:, 1:]).all()
    assert all(len(set(row)) == k for row in indices.tolist())
    mem = At.clone()
    slots = mm.replace(mem, zt, torch.from_numpy(u), torch.from_numpy(r), psi, metric)
    check_replace(A, z, u, r, psi, metric, slots.numpy(), mem.numpy())
    mem_t = At.clone().double()
    slots_t = mm.replace(mem_t, zt.double(), torch.from_numpy(u), torch.from_numpy(r), psi, metric)
    check_replace(A, z, u, r, psi, metric, slots_t.numpy(), mem_t.float().numpy())
