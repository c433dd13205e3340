"""Weighting ``mamt``: memory-assistant multi-task learning (Yan et al., "Memory-assistant collaborative
language understanding", IEEE TII 2022).

A memory of M = ``memory`` × B target features is filled at setup (features under the initial backbone).
On a target batch each instance replaces a memory slot (Eq. 3, Algorithm 1 lines 4–12): with probability
ψ the least similar slot, else a random one, in batch order (exact sequential semantics). On an auxiliary
batch each instance gets τ_i = min(φ, max(0, S_i)) (Eq. 5), S_i the mean of its top-k similarities to the
memory (Eq. 4; k = M is the paper's mean), similarity F of Eq. 2 (``maxnorm``) or cosine; the loss is
τ_i·ℓ_i with τ detached. Target instances weigh 1. The memory is training-only: it is never part of the
model (plug-out), and it is saved with the weighting's state. Under torchrun the target features of all ranks
are gathered in batch order (``run.gather``) and every rank applies the same replacements with the same draws,
so the memory is identical on every rank.
"""

from __future__ import annotations

from typing import Literal

from mtl import Weighting, hookimpl


class Mamt(Weighting):
    family = "instance"

    def __init__(self, memory: int = 5, psi: float = 0.8, phi: float = 1.0, k: int | None = None, layers: int = 1,
                 metric: Literal["cosine", "maxnorm"] = "cosine"):
        super().__init__()
        if memory < 1:
            raise ValueError(f"memory must be >= 1 batch (got {memory})")
        if not 0.0 <= psi <= 1.0:
            raise ValueError(f"psi must be in [0, 1] (got {psi})")
        if not phi >= 0.0:
            raise ValueError(f"phi must be >= 0 (got {phi})")
        if k is not None and k < 1:
            raise ValueError(f"k must be >= 1 or none (got {k})")
        if layers < 1:
            raise ValueError(f"layers must be >= 1 (got {layers})")
        self.memory_batches, self.psi, self.phi, self.k, self.layers, self.metric = memory, psi, phi, k, layers, metric
        self.bank = None
        self.gather = lambda z: z
        self.tracker = None
        self.counts = {"argmin": 0, "random": 0}
        self.last: dict[str, float] = {}

    def setup(self, run) -> None:
        from mtl.errors import MtlError

        if run.target is None:
            raise MtlError("weighting 'mamt' needs a --target: its memory holds target-task features")
        if self.layers > run.model.backbone.config.num_hidden_layers:
            raise MtlError(f"weighting 'mamt': layers={self.layers} but the backbone has "
                           f"{run.model.backbone.config.num_hidden_layers} layers")
        slots = min(self.memory_batches * run.batch_size, len(run.train[run.target]))
        if self.k is not None and self.k > slots:
            raise MtlError(f"weighting 'mamt': k={self.k} is larger than the memory ({slots} slots)")
        self.rng = run.rng
        self.gather = run.gather  # the whole batch over distributed ranks, so every rank's memory stays equal
        self.bank = run.encode(run.target, slots, self.layers).contiguous()
        self._track()

    def _track(self) -> None:
        from mtl import memory

        mean_case = self.metric == "cosine" and self.k in (None, self.bank.shape[0])
        self.tracker = memory.MeanTracker(self.bank) if mean_case else None

    def _features(self, step, task: str):
        if self.layers == 1:
            return step.features[task].contiguous()
        from mtl import cls_features

        return cls_features(step.hidden_states[task], self.layers).contiguous()

    def scores(self, z):
        """S_i (Eq. 4): the mean top-k similarity of each instance to the memory."""
        import torch

        from mtl import memory

        if self.tracker is not None:  # cosine, k = M: S_i = ẑ_i · mean_j(â_j), O(B·D)
            zd = z.double()
            norms = zd.norm(dim=1)
            inverse = torch.where(norms > 0, 1.0 / norms.clamp_min(1e-300), torch.zeros_like(norms))
            return ((zd @ self.tracker.mean.to(z.device)) * inverse).float()
        values, _ = memory.topk(z, self.bank, self.k or self.bank.shape[0], self.metric)
        return values.mean(dim=1)

    def remember(self, z) -> None:
        """Write a target batch into the memory (Eq. 3) with draws from the run's generator."""
        import torch

        from mtl import memory

        u = torch.rand(z.shape[0], generator=self.rng)
        r = torch.randint(0, self.bank.shape[0], (z.shape[0],), generator=self.rng)
        if self.tracker is not None:
            self.tracker.replace(z, u, r, self.psi, self.metric)
        else:
            memory.replace(self.bank, z, u, r, self.psi, self.metric)
        argmin = int((u < self.psi).sum())
        self.counts["argmin"] += argmin
        self.counts["random"] += z.shape[0] - argmin
        self.last.update({"mamt.replaced": float(z.shape[0]), "mamt.replaced_argmin": float(argmin)})

    def loss(self, step):
        import torch

        weights, self.last = {}, {}
        for task, losses in step.losses.items():
            z = self._features(step, task)
            if task == step.target:
                self.remember(self.gather(z))
                weights[task] = torch.ones_like(losses)
            else:
                similarity = self.scores(z)
                weights[task] = similarity.clamp(min=0.0, max=self.phi).to(losses.device, losses.dtype).detach()
                self.last.update({"mamt.similarity": float(similarity.mean()), "mamt.tau": float(weights[task].mean())})
        return step.weighted(weights)

    def log(self) -> dict[str, float]:
        return {**super().log(), **self.last, "mamt.replacements_argmin": float(self.counts["argmin"]),
                "mamt.replacements_random": float(self.counts["random"])}

    def state_dict(self) -> dict:
        return {"bank": self.bank.detach().cpu().clone(), "argmin": self.counts["argmin"],
                "random": self.counts["random"]}

    def load_state_dict(self, state: dict) -> None:
        self.bank = state["bank"].to(self.bank.device if self.bank is not None else "cpu").contiguous()
        self.counts = {"argmin": int(state["argmin"]), "random": int(state["random"])}
        self._track()


@hookimpl
def register_weightings(register):
    register("mamt", Mamt, description="memory-assistant instance weighting (Yan et al., IEEE TII 2022)")


def similarity_figure(run):
    """``similarity.png``: the mean similarity S of the auxiliary examples to the memory (and the mean τ) over
    training, as in the paper's Fig. 6. ``run`` is the read-only view of ``mtl plot`` (no torch, no mtl import)."""
    steps, values = run.series("mamt.similarity")
    if not values:
        return "no mamt.similarity records (not a MAMT run)"
    fig = run.figure()
    ax = fig.subplots()
    if len(values) > 2:
        ax.plot(steps, values, color="C0", alpha=0.25, linewidth=1)
    run.line(ax, steps, run.smooth(values), color="C0", linewidth=2,
             label="mean similarity S of auxiliary examples to the memory")
    tau_steps, tau = run.series("mamt.tau")
    if tau:
        run.line(ax, tau_steps, run.smooth(tau), color="C1", linewidth=1.5, linestyle="--",
                 label="mean weight τ = min(φ, max(0, S))")
    run.title(ax, f"MAMT: auxiliary-to-memory similarity over training (EMA {run.smoothing:g})")
    run.finish(ax, "step", "similarity / τ")
    return fig


@hookimpl
def register_figures(register):
    register("similarity", similarity_figure,
             description="MAMT: mean auxiliary-to-memory similarity and weight τ over training")
