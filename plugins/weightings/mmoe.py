"""Weighting ``mmoe``: multi-gate mixture of experts (Ma et al., "Modeling Task Relationships in Multi-task
Learning with Multi-gate Mixture-of-Experts", KDD 2018).

``experts`` MLP experts f_e (Linear(D, hidden) → ReLU → dropout → Linear(hidden, D)) share the pooled backbone
feature x; each task t has its own softmax gate g_t(x) = softmax(W_t·x) over the experts, and its head sees
the task feature Σ_e g_t(x)_e · f_e(x) (the paper's Eqs. 5–6, with the backbone as the shared input layer).
The experts and gates are installed as ``run.model.feature_map``, so they are trained by the optimizer and
saved with the model; every instance of every task counts 1 in the loss. The mean gate of each task in the
step is logged as ``mmoe.gate.<task>.<e>``. ``inference_module(task, hidden_size)`` is the experts and that task's
gate only: what ``mtl export`` writes beside the encoder and ``mtl predict`` rebuilds (the other gates are plugged out).
"""

from __future__ import annotations

import functools

from mtl import Weighting, hookimpl


class Mmoe(Weighting):
    family = "architecture"

    def __init__(self, experts: int = 4, hidden: int | None = None, dropout: float = 0.1):
        super().__init__()
        if experts < 1:
            raise ValueError(f"experts must be >= 1 (got {experts})")
        if hidden is not None and hidden < 1:
            raise ValueError(f"hidden must be >= 1 or none (got {hidden})")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1) (got {dropout})")
        self.experts, self.hidden, self.dropout = experts, hidden, dropout
        self.module = None
        self.last: dict[str, float] = {}

    def setup(self, run) -> None:
        from mtl.errors import MtlError

        if run.model.feature_map is not None:
            raise MtlError("weighting 'mmoe': the model already has a feature map between backbone and heads")
        self.module = _module_class()(run.hidden_size, list(run.tasks), self.experts,
                                      self.hidden or run.hidden_size, self.dropout)
        run.model.feature_map = self.module  # the trainer moves the model (and so the module) to the device

    def loss(self, step):
        self.last = {}
        if self.module is not None:
            for task in step.losses:
                gates = self.module.last_gates.pop(task, None)
                if gates is not None:
                    self.last.update({f"mmoe.gate.{task}.{e}": float(g) for e, g in enumerate(gates.mean(0))})
        return super().loss(step)

    def log(self) -> dict[str, float]:
        return {**super().log(), **self.last}

    def inference_module(self, task: str, hidden_size: int):
        """The experts and ``task``'s gate only (the other tasks' gates are not needed to predict ``task``)."""
        return _module_class()(hidden_size, [task], self.experts, self.hidden or hidden_size, self.dropout)


@functools.cache
def _module_class():
    """The nn.Module class, defined on first use so that importing this plugin does not import torch."""
    import torch
    from torch import nn

    class MixtureOfExperts(nn.Module):
        """``experts`` shared MLP experts and one softmax gate per task: feature = Σ_e gate_e(x)·expert_e(x)."""

        def __init__(self, hidden_size: int, tasks: list[str], experts: int = 4, hidden: int | None = None,
                     dropout: float = 0.1) -> None:
            super().__init__()
            width = hidden or hidden_size
            self.experts = nn.ModuleList(
                nn.Sequential(nn.Linear(hidden_size, width), nn.ReLU(), nn.Dropout(dropout),
                              nn.Linear(width, hidden_size))
                for _ in range(experts)
            )
            self.gates = nn.ModuleDict({task: nn.Linear(hidden_size, experts) for task in tasks})
            self.last_gates: dict[str, torch.Tensor] = {}  # detached gates of the last forward of each task

        def gate(self, x: torch.Tensor, task: str) -> torch.Tensor:
            """The gate of ``task`` for each row of ``x``: [B, experts], each row sums to 1."""
            return torch.softmax(self.gates[task](x), dim=-1)

        def forward(self, x: torch.Tensor, task: str) -> torch.Tensor:
            gates = self.gate(x, task)  # [B, E]
            outputs = torch.stack([expert(x) for expert in self.experts], dim=1)  # [B, E, D]
            self.last_gates[task] = gates.detach()
            return (gates.unsqueeze(-1).to(outputs.dtype) * outputs).sum(dim=1)

    MixtureOfExperts.__module__, MixtureOfExperts.__qualname__ = __name__, "MixtureOfExperts"
    return MixtureOfExperts


def __getattr__(name: str):
    if name == "MixtureOfExperts":  # importable (and picklable) by name, built lazily
        return _module_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@hookimpl
def register_weightings(register):
    register("mmoe", Mmoe, description="multi-gate mixture of experts between backbone and heads (Ma et al., KDD 2018)")


def gates_figure(run):
    """``gates.png``: the mean gate weight of each expert, per task (a heatmap of the ``mmoe.gate.<task>.<e>``
    records). ``run`` is the read-only view of ``mtl plot``; numpy is imported only when there is something to draw."""
    keys = run.keys("mmoe.gate.")
    if not keys:
        return "no mmoe.gate.<task>.<expert> records (not an MMoE run)"
    sums: dict[tuple[str, int], list[float]] = {}
    for key in keys:
        task, _, expert = key[len("mmoe.gate."):].rpartition(".")
        if not task or not expert.isdigit():
            continue
        sums[(task, int(expert))] = run.series(key)[1]
    tasks = run.ordered(sorted({t for t, _ in sums}))
    experts = sorted({e for _, e in sums})
    if not tasks:
        return "no mmoe.gate.<task>.<expert> records"
    import numpy as np

    matrix = np.full((len(tasks), len(experts)), np.nan)
    for (task, expert), values in sums.items():
        if values:
            matrix[tasks.index(task), experts.index(expert)] = sum(values) / len(values)
    fig = run.figure(max(5.0, 1.3 * len(experts) + 3), max(2.8, 0.6 * len(tasks) + 1.8))
    ax = fig.subplots()
    image = ax.imshow(matrix, cmap="viridis", vmin=0, vmax=max(1e-9, float(np.nanmax(matrix))), aspect="auto")
    for i in range(len(tasks)):
        for j in range(len(experts)):
            if not np.isnan(matrix[i, j]):
                bright = matrix[i, j] > 0.6 * np.nanmax(matrix)
                ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=9,
                        color="black" if bright else "white")
    ax.set_xticks(range(len(experts)), [f"expert {e}" for e in experts])
    ax.set_yticks(range(len(tasks)), [run.label(t) for t in tasks])
    fig.colorbar(image, ax=ax, label="mean gate weight")
    run.title(ax, "MMoE gate use: mean gate weight per task and expert")
    ax.set_xlabel("expert")
    ax.set_ylabel("task")
    return fig


@hookimpl
def register_figures(register):
    register("gates", gates_figure, description="MMoE: mean gate weight per task and expert (heatmap)")
