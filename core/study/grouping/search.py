"""The exact search of `mtl group`: the cheapest cover of the tasks and the best selection within a budget (branch
and bound)."""

from __future__ import annotations

import itertools
import math
import sys
import time
from typing import Any

from mtl.errors import MtlError, OptionError
from mtl.study.grouping.networks import Network, Selection
from mtl.study.statistics import bounded


def min_cover_cost(tasks: list[str], networks: list[Network]) -> tuple[float, list[int]]:
    """The cheapest set of networks whose union is every task: exact, by branch and bound on set cover (branch
    on the uncovered task with the fewest networks, networks that cover a subset of another's new tasks at no
    lower cost left out, cut by the larger of |uncovered| × the least cost per newly covered task and the
    fewest networks that can cover the uncovered tasks × the least cost)."""
    index = {t: i for i, t in enumerate(tasks)}
    masks = [sum(1 << index[t] for t in net.tasks) for net in networks]
    costs = [net.cost for net in networks]
    covering = [[k for k, m in enumerate(masks) if m >> i & 1] for i in range(len(tasks))]
    best: list[Any] = [math.inf, []]

    def cover(uncovered: int, spent: float, chosen: list[int]) -> None:
        if not uncovered:
            if spent < best[0]:
                best[0], best[1] = spent, list(chosen)
            return
        left = uncovered.bit_count()
        reach = [(costs[k], n) for k, m in enumerate(masks) if (n := (m & uncovered).bit_count())]
        ratio = min(c / n for c, n in reach)
        count = -(-left // max(n for _, n in reach))  # at least this many more networks
        if spent + max(ratio * left, count * min(c for c, _ in reach)) >= best[0] - 1e-9:
            return
        task = min((i for i in range(len(tasks)) if uncovered >> i & 1), key=lambda i: len(covering[i]))
        options = sorted(covering[task], key=lambda k: (costs[k] / (masks[k] & uncovered).bit_count(),
                                                        -(masks[k] & uncovered).bit_count()))
        kept: list[int] = []
        for k in options:
            new = masks[k] & uncovered
            if any(new & ~(masks[j] & uncovered) == 0 and costs[j] <= costs[k] for j in kept):
                continue  # another option covers these tasks and more, for no more
            kept.append(k)
            if spent + costs[k] >= best[0] - 1e-9:
                continue
            chosen.append(k)
            cover(uncovered & ~masks[k], spent + costs[k], chosen)
            chosen.pop()

    with _deep_recursion(len(tasks) + 100):
        cover((1 << len(tasks)) - 1, 0.0, [])
    return best[0], best[1]


def select(tasks: list[str], networks: list[Network], budget: float) -> Selection:
    """The set of networks of total cost ≤ ``budget`` covering every task with the largest sum of served scores.

    Exact, by branch and bound over the tasks (see :class:`_Search`). An infeasible budget (below the cheapest
    cover of every task, :func:`min_cover_cost`) is a one-line error that gives that cost.
    """
    if bounded(budget) is None or budget <= 0:
        raise OptionError(f"--budget must be a positive number up to 1e12 (got {budget})")
    started = time.perf_counter()
    min_cost, _ = min_cover_cost(tasks, networks)
    if budget < min_cost - 1e-9:
        raise MtlError(f"--budget {budget:g} cannot cover every task: the cheapest set of candidate networks that "
                       f"covers all {len(tasks)} tasks costs {min_cost:g}; give --budget {min_cost:g} or more")
    search = _Search(tasks, networks, float(budget))
    chosen = search.run()
    if chosen is None:  # cannot happen once the budget covers every task; kept as a guard
        raise MtlError(f"--budget {budget:g}: no set of candidate networks covers every task")
    return _solution(tasks, networks, chosen, budget, min_cost, search.nodes, time.perf_counter() - started)


class _Search:
    """Branch and bound for :func:`select`.

    A solution is written as a partition of the tasks into *blocks*, each block P served by its own network
    k ⊇ P (value Σ_{t ∈ P} s_k(t), cost c_k): every set of networks is worth the best such partition of its
    tasks, so the best partition within the budget is the optimum. A node holds the blocks chosen so far; it
    branches on its first unserved task t, one child per network k ∋ t that fits the remaining budget r and
    per block P ∋ t of k's unserved tasks.

    Upper bound on what the unserved tasks U can still add (a Lagrangian relaxation of the budget): for any
    λ ≥ 0 and any y with Σ_{t ∈ k ∩ U} (s_k(t) − y_t)⁺ ≤ λ·c_k for every network k that fits the remaining
    budget r, every completion is worth at most λ·r + Σ_{t ∈ U} y_t (a block of network k is worth at most its
    tasks' y plus λ·c_k, and the costs sum to ≤ r). y starts at y_t = max_k (s_k(t) − λ·c_k / |k ∩ U|), which
    satisfies that, and each y_t is then lowered as far as the constraints allow, one task after the other. At
    λ = 0 the bound is each unserved task's best score over the remaining networks; a larger λ charges each
    task its share of a network's cost, which is what a tight budget forces. The smallest bound over a few λ
    (a wide grid at the root, around the parent's best λ below it) is used. The same (λ, y) bound each child
    without visiting it: the child adding block P of network k is worth at most the node's bound plus its
    *reduced value* v(P) − λ·c_k − Σ_{t ∈ P} y_t ≤ 0, so children are tried in order of reduced value and the
    rest are cut at the first that cannot beat the best solution found. A node is also cut when its unserved
    tasks cannot be covered within r (the fractional cover Σ_t min_k c_k / |k ∩ U| exceeds r), and it is a
    leaf when serving each unserved task by its best network fits r (that reaches the λ = 0 bound).
    """

    def __init__(self, tasks: list[str], networks: list[Network], budget: float) -> None:
        import numpy as np

        self.np = np
        index = {t: i for i, t in enumerate(tasks)}
        self.n, self.K = len(tasks), len(networks)
        self.member = np.zeros((self.K, self.n), dtype=bool)
        self.scores = np.zeros((self.K, self.n))
        for k, net in enumerate(networks):
            for t in net.tasks:
                self.member[k, index[t]], self.scores[k, index[t]] = True, net.scores[t]
        self.costs = np.array([net.cost for net in networks], dtype=float)
        self.masks = [sum(1 << index[t] for t in net.tasks) for net in networks]
        self.by_task = [[k for k in range(self.K) if self.masks[k] >> i & 1] for i in range(self.n)]
        values = self.scores[self.member]
        scale = float(values.max() - values.min()) or 1.0
        self.scale = scale
        self.lambdas = np.concatenate(([0.0], scale * 2.0 ** (np.arange(-14, 10, dtype=float) / 2)))
        self.tol = 1e-9 * max(1.0, float(np.abs(values).max())) * self.n
        self.budget = budget
        self.best_value = -math.inf
        self.best: list[int] | None = None
        self.nodes = 0
        self.branch = 0  # the task the last bound chose to branch on

    def run(self) -> list[int] | None:
        with _deep_recursion(self.n + 100):
            self._visit((1 << self.n) - 1, self.budget, 0.0, [], None)
        return self.best

    def _bound(self, unserved: Any, room: float, parent: float | None,
               need: float) -> tuple[float, float, Any, list[int] | None] | None:
        """(bound, λ, y over all tasks, None) for the unserved tasks (a boolean mask) and remaining budget;
        (bound, 0, None, networks) when serving each task by its best network fits the budget (that reaches
        the bound); None when they cannot be covered within it. A bound ≤ ``need`` is returned as soon as it
        is found (the node is cut)."""
        np = self.np
        inside = self.member[:, unserved]
        size = inside.sum(axis=1)
        fits = (size > 0) & (self.costs <= room + 1e-12)
        inside = inside[fits]
        if not inside.any(axis=0).all():
            return None
        cost = self.costs[fits]
        share = cost / size[fits]
        if np.where(inside, share[:, None], np.inf).min(axis=0).sum() > room + 1e-9:
            return None
        scores = np.where(inside, self.scores[fits][:, unserved], -np.inf).T  # unserved tasks × networks
        best = np.unique(np.flatnonzero(fits)[scores.argmax(axis=1)])
        if self.costs[best].sum() <= room + 1e-12:  # each task's best network fits: the λ = 0 bound is reached
            return float(scores.max(axis=1).sum()), 0.0, None, [int(k) for k in best]
        lam = self._lambdas(parent)
        y = (scores[None] - lam[:, None, None] * share[None, None, :]).max(axis=2)  # λ × tasks
        values = lam * room + y.sum(axis=1)
        if values.min() <= need:  # cut before tightening
            return float(values.min()), 0.0, None, None
        # tighten: lower each y_t as far as every network's constraint Σ_t (s_k(t) − y_t)⁺ ≤ λ·c_k allows
        excess = np.maximum(scores[None] - y[:, :, None], 0.0)  # λ × tasks × networks
        total = excess.sum(axis=1)  # λ × networks
        for j in np.argsort(-y[0], kind="stable"):
            ks = np.flatnonzero(inside[:, j])
            row = scores[j, ks]
            own = excess[:, j, ks]
            slack = lam[:, None] * cost[ks][None] - (total[:, ks] - own)
            lowest = np.minimum((row[None] - slack).max(axis=1), y[:, j])
            new = np.maximum(row[None] - lowest[:, None], 0.0)
            total[:, ks] += new - own
            excess[:, j, ks] = new
            y[:, j] = lowest
        values = lam * room + y.sum(axis=1)
        i = int(np.argmin(values))
        bound = float(values[i])
        if bound <= need:
            return bound, 0.0, None, None
        # each task's children: the best block with it in network k has reduced value
        # (s_k(t) − y_t) + Σ_{other u in k ∩ U} max(0, s_k(u) − y_u) − λ·c_k; a task without a child that can
        # beat the best solution cuts the node, else the task with the fewest such networks is branched on
        gap = scores - y[i][:, None]  # tasks × networks, −inf outside
        gain = np.maximum(gap, 0.0)
        best_block = gap + (gain.sum(axis=0)[None] - gain) - lam[i] * cost[None]
        viable = (best_block > need - bound).sum(axis=1)
        if not viable.all():
            return bound, 0.0, None, None
        full = np.zeros(self.n)
        full[unserved] = y[i]
        self.branch = int(np.flatnonzero(unserved)[int(np.argmin(viable))])
        return bound, float(lam[i]), full, None

    def _lambdas(self, parent: float | None) -> Any:
        """The λ tried at a node: a wide grid at the root, a few around the parent's best λ below it."""
        if parent is None:
            return self.lambdas
        if parent == 0.0:
            return self.np.concatenate(([0.0], self.scale * 2.0 ** self.np.array([-6.0, -4.0, -2.0, 0.0, 2.0])))
        return self.np.concatenate(([0.0], parent * 2.0 ** self.np.array([-1.0, -0.5, 0.0, 0.5, 1.0])))

    def _visit(self, unserved: int, room: float, value: float, chosen: list[int], parent: float | None) -> None:
        self.nodes += 1
        if not unserved:
            if value > self.best_value + self.tol:
                self.best_value, self.best = value, list(chosen)
            return
        mask = self.np.array([bool(unserved >> i & 1) for i in range(self.n)])
        found = self._bound(mask, room, parent, self.best_value + self.tol - value)
        if found is None:
            return
        bound, lam, y, completion = found
        if value + bound <= self.best_value + self.tol:
            return
        if completion is not None:  # the best completion of this node, nothing left to branch on
            self.best_value, self.best = value + bound, chosen + completion
            return
        t = self.branch
        children = []
        for k in self.by_task[t]:
            cost = self.costs[k]
            if cost > room + 1e-12 or k in chosen:
                continue
            others = _bits(self.masks[k] & unserved & ~(1 << t))
            row = self.scores[k]
            for r in range(len(others) + 1):
                for extra in itertools.combinations(others, r):
                    block = (t, *extra)
                    worth = math.fsum(row[i] for i in block)
                    reduced = worth - lam * cost - math.fsum(y[i] for i in block)
                    children.append((reduced, k, block, worth))
        children.sort(key=lambda child: (-child[0], -len(child[2])))
        for reduced, k, block, worth in children:
            if value + bound + reduced <= self.best_value + self.tol:
                break  # this child and every later one cannot beat the best solution found
            chosen.append(k)
            self._visit(unserved & ~sum(1 << i for i in block), room - self.costs[k], value + worth, chosen, lam)
            chosen.pop()


def _solution(tasks: list[str], networks: list[Network], chosen: list[int], budget: float, min_cost: float,
              nodes: int, seconds: float) -> Selection:
    """Each task's best chosen network; networks that serve no task are dropped (same objective, less cost)."""
    chosen = sorted(chosen)
    served: dict[str, tuple[int, float]] = {}
    for task in tasks:
        options = [(networks[k].scores[task], -i) for i, k in enumerate(chosen) if task in networks[k].scores]
        score, i = max(options)
        served[task] = (-i, score)
    used = sorted({i for i, _ in served.values()})
    renumber = {old: new for new, old in enumerate(used)}
    kept = [networks[chosen[i]] for i in used]
    served = {t: (renumber[i], s) for t, (i, s) in served.items()}
    return Selection(budget, list(tasks), kept, served, math.fsum(s for _, s in served.values()),
                     math.fsum(n.cost for n in kept), min_cost, nodes, seconds)


class _deep_recursion:
    """Allow a search as deep as its candidates (Python's default limit is 1000 frames)."""

    def __init__(self, depth: int) -> None:
        self.depth = depth

    def __enter__(self) -> None:
        self.before = sys.getrecursionlimit()
        sys.setrecursionlimit(max(self.before, self.depth + 200))

    def __exit__(self, *exc: object) -> None:
        sys.setrecursionlimit(self.before)


def _bits(mask: int) -> list[int]:
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out
