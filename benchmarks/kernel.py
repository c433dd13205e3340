"""Benchmark: the MAMT memory step with the C++ kernel vs plain torch, one CPU thread.

One MAMT step = sequential replacement with a target batch (Eq. 3, Alg. 1 lines 4-12; psi = 0.8) followed
by the auxiliary weights of an auxiliary batch (Eqs. 4-5; cosine, k = M, phi = 1). Compared:

* kernel        mtl.memory.replace + mtl.memory.weights (C++ kernel, stateless: reads the whole memory)
* tracker       the same through mtl.memory.MeanTracker (weights from the tracked normalised mean)
* (a) exact     torch with a Python loop over the batch: each instance recomputes its similarity to the
                current memory, argmin, write; weights via matmul + clamp
* (b) one-shot  the vectorised torch a user would write: the B x M similarity once, then sequential argmin
                with column updates from the B x B similarity; weights via matmul + clamp

Median wall time of a step (time.perf_counter), ratios against the kernel, and whether the kernel and
(a) agree (same slots, same memory, same weights to 1e-5) from the same start. Markdown on stdout.

    python benchmarks/kernel.py            # B = 32, M in {32, 160, 224, 4096, 65536}, D in {384, 512, 768}
    python benchmarks/kernel.py --quick    # small sizes only
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

import mtl.memory as mm


def step_kernel(mem, z, u, r, za, psi, phi):
    mm.replace(mem, z, u, r, psi)
    return mm.weights(za, mem, None, phi)


def make_step_tracker(mem):
    tracker = mm.MeanTracker(mem)

    def step(mem_, z, u, r, za, psi, phi):
        tracker.replace(z, u, r, psi)
        return tracker.weights(za, None, phi)

    return step


def step_exact(mem, z, u, r, za, psi, phi):
    """(a) exact torch: a Python loop over the batch, each instance against the current memory."""
    take = (u < psi).tolist()
    rl = r.tolist()
    for i in range(z.shape[0]):
        if take[i]:
            slot = int(torch.argmin(F.cosine_similarity(mem, z[i : i + 1], dim=1)))
        else:
            slot = rl[i]
        mem[slot] = z[i]
    return (F.normalize(za, dim=1) @ F.normalize(mem, dim=1).T).mean(1).clamp(0, phi)


def step_oneshot(mem, z, u, r, za, psi, phi):
    """(b) one-shot torch: similarity once, sequential argmin with column updates, weights by matmul."""
    zn = F.normalize(z, dim=1)
    S = zn @ F.normalize(mem, dim=1).T
    G = zn @ zn.T
    take = (u < psi).tolist()
    rl = r.tolist()
    for i in range(z.shape[0]):
        slot = int(torch.argmin(S[i])) if take[i] else rl[i]
        mem[slot] = z[i]
        S[:, slot] = G[:, i]
    return (F.normalize(za, dim=1) @ F.normalize(mem, dim=1).T).mean(1).clamp(0, phi)


def median_time(step, mem, inputs, budget: float, max_repeats: int, warmup: bool = True) -> float:
    """Median seconds per call; repeats chosen so that a size takes about `budget` seconds (at least 3)."""
    times = []
    t0 = time.perf_counter()
    step(mem, *inputs)  # warm-up and first estimate
    first = time.perf_counter() - t0
    if not warmup:  # too slow to waste a call: count it
        times.append(first)
    repeats = max(3 - len(times), min(max_repeats, int(budget / max(first, 1e-9))))
    for _ in range(repeats):
        t0 = time.perf_counter()
        step(mem, *inputs)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def fmt_ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:.3f}" if ms < 1 else f"{ms:.2f}" if ms < 100 else f"{ms:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--slots", type=int, nargs="+", default=[32, 160, 224, 4096, 65536])
    parser.add_argument("--dims", type=int, nargs="+", default=[384, 512, 768])
    parser.add_argument("--quick", action="store_true", help="M in {32, 160, 224} only")
    parser.add_argument("--budget", type=float, default=0.4, help="seconds of timing per implementation and size")
    parser.add_argument("--psi", type=float, default=0.8)
    parser.add_argument("--phi", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    slots = [m for m in args.slots if m <= 224] if args.quick else args.slots

    torch.set_num_threads(1)
    isa = mm._kernel.isa() if mm._kernel is not None else "-"
    B = args.batch
    print(f"MAMT memory step (replace B={B} target features, then weights of B auxiliary features; cosine, "
          f"k = M, psi={args.psi}, phi={args.phi}); backend {mm.BACKEND}, kernel ISA {isa}, torch "
          f"{torch.__version__}, {torch.get_num_threads()} thread; median ms per step\n")
    print("| M | D | kernel | tracker | (b) one-shot torch | (a) exact torch | (a) / kernel | (b) / kernel | agree |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|:---:|")
    for M in slots:
        for D in args.dims:
            g = torch.Generator().manual_seed(args.seed * 1000003 + M * 1009 + D)
            mem0 = torch.randn(M, D, generator=g)
            z = torch.randn(B, D, generator=g)
            za = torch.randn(B, D, generator=g) + 0.3 * mem0[:1]  # some positive similarity to clamp
            u = torch.rand(B, generator=g, dtype=torch.float64)
            r = torch.randint(0, M, (B,), generator=g)
            inputs = (z, u, r, za, args.psi, args.phi)

            # Agreement from the same start.
            mk, ma = mem0.clone(), mem0.clone()
            sk = mm.replace(mk, z, u, r, args.psi)
            tk = mm.weights(za, mk, None, args.phi)
            take = (u < args.psi).tolist()
            sa = []
            for i in range(B):
                slot = int(torch.argmin(F.cosine_similarity(ma, z[i : i + 1], dim=1))) if take[i] else int(r[i])
                sa.append(slot)
                ma[slot] = z[i]
            ta = (F.normalize(za, dim=1) @ F.normalize(ma, dim=1).T).mean(1).clamp(0, args.phi)
            agree = sk.tolist() == sa and torch.equal(mk, ma) and torch.allclose(tk, ta, atol=1e-5, rtol=0)
            del mk, ma

            max_rep = 200 if M <= 4096 else 10
            budget = args.budget if M <= 4096 else 2 * args.budget
            t_k = median_time(step_kernel, mem0.clone(), inputs, budget, max_rep)
            mem_t = mem0.clone()
            t_t = median_time(make_step_tracker(mem_t), mem_t, inputs, budget, max_rep)
            del mem_t
            t_b = median_time(step_oneshot, mem0.clone(), inputs, budget, max_rep)
            t_a = median_time(step_exact, mem0.clone(), inputs, budget, max_rep, warmup=M <= 4096)
            print(f"| {M} | {D} | {fmt_ms(t_k)} | {fmt_ms(t_t)} | {fmt_ms(t_b)} | {fmt_ms(t_a)} | "
                  f"{t_a / t_k:.1f}x | {t_b / t_k:.1f}x | {'yes' if agree else 'NO'} |", flush=True)


if __name__ == "__main__":
    main()
