"""The gradient family (issue 13): every method against an independent reference on constructed Jacobians, the state
of the stateful ones through the checkpoint format, and every name in a real run (``--sampler all``), the stateful ones
crashed and resumed.

The references are the papers' formulas computed here in NumPy/SciPy, without TorchJD: closed forms (two-task MGDA,
IMTL-G, Aligned-MTL's SVD), the optimisation problems solved with ``scipy.optimize`` (UPGrad's and DualProj's
projections onto the dual cone, CAGrad, PCD), the fixed-point conditions of the solution (Nash-MTL's bargaining
condition, FairGrad's α-fairness, ConFIG's equal angles), definitions (Krum, trimmed mean, GradDrop's sign choice) and
updates written out step by step (GradVac, CR-MOGM, Excess-MTL, MoDo, SDMGrad, MoCo, DB-MTL). PCGrad has its own file,
tests/plugins/test_pcgrad.py.
"""

from __future__ import annotations

import json
import types

import numpy as np
import pytest
import torch
from conftest import assert_one_line_error, invoke_cli
from helpers.runs import Crash, crash_at, run_files
from scipy.optimize import least_squares, minimize

import mtl
from mtl import Step
from mtl.errors import MtlError
from mtl.runs import checkpoint
from mtl.runs.folder import RunFolder

TASKS = ["a", "b", "c"]


def make(name: str, tasks=TASKS, target: str | None = "a", seed: int = 0, **options):
    """The plugin, set up for ``tasks`` with a run generator seeded with ``seed``."""
    weighting = mtl.create("weighting", name, **options)
    weighting.setup(types.SimpleNamespace(model=None, rng=torch.Generator().manual_seed(seed), tasks=list(tasks),
                                          target=target))
    return weighting


def empty_step(tasks) -> Step:
    return Step(losses={task: torch.zeros(1) for task in tasks}, features={}, target=None, index=0, epoch=0,
                progress=0.0)


def combine(weighting, jacobian: np.ndarray, tasks=TASKS) -> tuple[np.ndarray, dict[str, float]]:
    """The direction ``weighting`` gives for ``jacobian`` (rows: ``tasks``' gradients) and the weights it records."""
    step = empty_step(tasks)
    direction = weighting.aggregate(torch.tensor(jacobian, dtype=torch.float64), list(tasks), step)
    return direction.numpy(), dict(step.weights)


def through_checkpoint(weighting, name: str, **options):
    """A fresh plugin given ``weighting``'s state through the checkpoint format (safetensors + JSON)."""
    state = checkpoint.deserialise(checkpoint.serialise({"weighting": weighting.state_dict()}))["weighting"]
    fresh = make(name, **options)
    fresh.load_state_dict(state)
    return fresh


def simplex_projection(v: np.ndarray) -> np.ndarray:
    """Euclidean projection onto the probability simplex, by bisection on the threshold τ: Σ max(v − τ, 0) = 1."""
    low, high = v.min() - 1.0, v.max()
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if np.maximum(v - middle, 0).sum() > 1 else (low, middle)
    return np.maximum(v - (low + high) / 2, 0)


def cone_projection(g: np.ndarray, jacobian: np.ndarray) -> np.ndarray:
    """argmin_x ½‖x − g‖² s.t. Jx ≥ 0 (the dual cone of the rows), exactly, from its KKT conditions: x = g + Jᵀμ with
    μ ≥ 0, Jx ≥ 0 and μ_i (Jx)_i = 0; every active set is tried and the feasible one kept (the solution is unique)."""
    from itertools import combinations

    rows = range(len(jacobian))
    found = []
    for size in range(len(jacobian) + 1):
        for active in map(list, combinations(rows, size)):
            mu = np.zeros(len(jacobian))
            if active:
                sub = jacobian[active]
                mu[active] = np.linalg.solve(sub @ sub.T, -sub @ g)  # the active constraints hold with equality
            x = g + jacobian.T @ mu
            if mu.min() >= -1e-12 and (jacobian @ x).min() >= -1e-10:
                found.append(x)
    assert found and all(np.allclose(x, found[0]) for x in found)
    return found[0]


def conflicting(seed: int, tasks: int = 3, dims: int = 5) -> np.ndarray:
    """A random Jacobian whose first row conflicts with the others."""
    rng = np.random.default_rng(seed)
    jacobian = rng.normal(size=(tasks, dims))
    jacobian[0] -= 1.5 * jacobian[1:].sum(axis=0)
    assert (jacobian @ jacobian.T)[0, 1:].min() < 0
    return jacobian


# ---------------------------------------------------------------------------------------------- minimum-norm family
def test_mgda_is_the_two_task_closed_form_min_norm_point():
    cases = [np.array([[1.0, 0.0], [0.0, 2.0]]), np.array([[3.0, -1.0, 2.0], [-2.0, 1.0, 0.5]]),
             np.array([[1.0, 1.0], [3.0, 3.5]])]  # the last: a vertex (g₁ is the closest point)
    for jacobian in cases:
        g1, g2 = jacobian
        gamma = np.clip((g2 - g1) @ g2 / ((g1 - g2) @ (g1 - g2)), 0.0, 1.0)  # argmin_γ ‖γg₁ + (1 − γ)g₂‖²
        expected = gamma * g1 + (1 - gamma) * g2
        direction, weights = combine(make("mgda"), jacobian, ["a", "b"])
        assert np.allclose(direction, expected, atol=1e-6)
        assert weights["a"] == pytest.approx(gamma, abs=1e-6) and weights["b"] == pytest.approx(1 - gamma, abs=1e-6)
    assert np.allclose(combine(make("mgda"), cases[2], ["a", "b"])[0], cases[2][0])


def test_upgrad_is_the_mean_of_the_rows_projected_onto_the_dual_cone():
    for seed in range(3):
        jacobian = conflicting(seed)
        expected = np.mean([cone_projection(g, jacobian) for g in jacobian], axis=0)
        direction, weights = combine(make("upgrad", reg_eps=0.0), jacobian)
        assert np.allclose(direction, expected, rtol=1e-5, atol=1e-6)
        assert (jacobian @ direction).min() >= -1e-9  # conflicts with no task
        assert np.allclose(np.array([weights[t] for t in TASKS]) @ jacobian, direction, atol=1e-5)
        # preference weights: the projections combined with them instead of the mean
        preferred, _ = combine(make("upgrad", reg_eps=0.0, pref_vector={"a": 2.0, "b": 0.5, "c": 1.0}), jacobian)
        expected = sum(w * cone_projection(g, jacobian) for w, g in zip((2.0, 0.5, 1.0), jacobian, strict=True))
        assert np.allclose(preferred, expected, rtol=1e-5, atol=1e-6)


def test_dualproj_is_the_mean_projected_onto_the_dual_cone():
    for seed in range(3):
        jacobian = conflicting(seed)
        expected = cone_projection(jacobian.mean(axis=0), jacobian)
        direction, _ = combine(make("dualproj", reg_eps=0.0), jacobian)
        assert np.allclose(direction, expected, rtol=1e-5, atol=1e-6)
        assert not np.allclose(direction, jacobian.mean(axis=0), atol=1e-3)  # the mean itself conflicted


@pytest.mark.slow
def test_imtl_g_is_the_papers_closed_form_with_equal_projections_on_every_task():
    for seed in range(3):
        jacobian = np.random.default_rng(seed).normal(size=(3, 6))
        units = jacobian / np.linalg.norm(jacobian, axis=1, keepdims=True)
        differences, unit_differences = jacobian[0] - jacobian[1:], units[0] - units[1:]
        rest = jacobian[0] @ unit_differences.T @ np.linalg.inv(differences @ unit_differences.T)  # Eq. 10
        alpha = np.concatenate([[1 - rest.sum()], rest])
        direction, weights = combine(make("imtl-g"), jacobian)
        assert np.allclose([weights[t] for t in TASKS], alpha, atol=1e-6)
        assert np.allclose(direction, alpha @ jacobian, atol=1e-6)
        projections = units @ direction
        assert np.allclose(projections, projections[0], rtol=1e-6)


def test_cagrad_reaches_the_optimum_of_its_objective():
    for seed, c in [(0, 0.4), (1, 0.4), (2, 0.8)]:
        jacobian = conflicting(seed)
        mean = jacobian.mean(axis=0)
        radius = c * np.linalg.norm(mean)
        # max_d min_i ⟨g_i, d⟩ s.t. ‖d − g₀‖ ≤ c‖g₀‖ through its convex dual over the simplex (Liu et al. 2021,
        # Eq. 4): w* = argmin_w g_w·g₀ + c‖g₀‖‖g_w‖, d* = g₀ + c‖g₀‖ g_w*/‖g_w*‖; a grid, then SLSQP from its best
        dual = lambda w, j=jacobian, m=mean, r=radius: (w @ j) @ m + r * np.linalg.norm(w @ j)  # noqa: E731
        n = 60
        grid = [np.array([a, b, n - a - b]) / n for a in range(n + 1) for b in range(n + 1 - a)]
        start = min(grid, key=dual)
        result = minimize(dual, start, method="SLSQP", bounds=[(0, 1)] * 3,
                          constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}], options={"ftol": 1e-12})
        w = result.x if result.success and dual(result.x) <= dual(start) else start
        g_w = w @ jacobian
        best = mean + radius * g_w / np.linalg.norm(g_w)
        direction, _ = combine(make("cagrad", c=c), jacobian)
        scale = np.linalg.norm(jacobian, axis=1).max()  # cvxpy's tolerance is relative to the problem's scale
        assert np.linalg.norm(direction - mean) <= radius * (1 + 1e-5)  # feasible
        assert (jacobian @ direction).min() == pytest.approx((jacobian @ best).min(), abs=1e-4 * scale ** 2)  # optimal
        assert np.allclose(direction, best, atol=1e-4 * scale)
        assert np.linalg.norm(direction - mean) > 0.9 * radius  # not the mean: the worst task was improved


def test_aligned_mtl_is_the_jacobian_with_its_singular_values_set_to_the_smallest():
    for seed in range(3):
        jacobian = np.random.default_rng(seed).normal(size=(3, 7)) * np.array([[1.0], [3.0], [0.3]])
        u, s, vt = np.linalg.svd(jacobian, full_matrices=False)
        for mode, scale in [("min", s.min()), ("rmse", np.sqrt(np.mean(s ** 2)))]:
            aligned = scale * u @ vt  # rows orthogonal, of equal norm
            direction, _ = combine(make("aligned-mtl", scale_mode=mode), jacobian)
            assert np.allclose(direction, aligned.mean(axis=0), atol=1e-6)


# ---------------------------------------------------------------------------------------------- surgery
def test_graddrop_keeps_one_sign_per_coordinate_chosen_with_the_sign_purity():
    jacobian = np.array([[1.0, -1.0, 3.0, 2.0],
                         [2.0, -3.0, -1.0, -2.0],
                         [0.5, -2.0, 0.0, 0.0]])
    purity = 0.5 * (1 + jacobian.sum(axis=0) / np.abs(jacobian).sum(axis=0))  # 1, 0, 0.75, 0.5
    positive = np.where(jacobian > 0, jacobian, 0).sum(axis=0)
    negative = np.where(jacobian < 0, jacobian, 0).sum(axis=0)
    kept_positive = []
    for seed in range(200):
        before = torch.get_rng_state()
        direction, weights = combine(make("graddrop", seed=seed), jacobian)
        assert torch.equal(torch.get_rng_state(), before) and weights == {}
        assert direction[0] == pytest.approx(3.5) and direction[1] == pytest.approx(-6.0)  # pure signs: the sum
        for k in (2, 3):
            assert direction[k] in (pytest.approx(positive[k]), pytest.approx(negative[k]))
        kept_positive.append([direction[k] == pytest.approx(positive[k]) for k in (2, 3)])
    frequency = np.mean(kept_positive, axis=0)  # P(U < P) = P
    assert abs(frequency[0] - purity[2]) < 0.1 and abs(frequency[1] - purity[3]) < 0.12
    same = [combine(make("graddrop", seed=7), jacobian)[0] for _ in range(2)]
    assert np.array_equal(*same)  # the run's generator decides
    everything, _ = combine(make("graddrop", leak={"a": 1.0, "b": 1.0, "c": 1.0}), jacobian)
    assert np.allclose(everything, jacobian.sum(axis=0))  # a full leak keeps every component


def gradvac_reference(steps: list[np.ndarray], beta: float) -> list[np.ndarray]:
    """GradVac (Wang et al. 2021, Alg. 1, Eq. 5) for two tasks: the directions of successive steps."""
    targets = np.zeros((2, 2))
    out = []
    for jacobian in steps:
        corrected = []
        for i, j in ((0, 1), (1, 0)):
            g, other = jacobian[i].copy(), jacobian[j]
            cosine = g @ other / (np.linalg.norm(g) * np.linalg.norm(other))
            target = targets[i, j]
            if cosine < target:
                raised = target * np.sqrt(1 - cosine ** 2) - cosine * np.sqrt(1 - target ** 2)
                g = g + other * np.linalg.norm(g) * raised / (np.linalg.norm(other) * np.sqrt(1 - target ** 2))
                assert g @ other / (np.linalg.norm(g) * np.linalg.norm(other)) == pytest.approx(target, abs=1e-9)
            targets[i, j] = (1 - beta) * target + beta * cosine
            corrected.append(g)
        out.append(corrected[0] + corrected[1])
    return out


def test_gradvac_raises_each_cosine_to_its_moving_target_and_keeps_the_targets_in_its_state():
    first = np.array([[1.0, 0.0, 0.0], [0.9, 0.436, 0.0]])  # cosine 0.9 > 0 = the targets: unchanged, targets 0.45
    second = np.array([[1.0, 0.0, 0.2], [0.2, 1.0, 0.0]])  # cosine ≈ 0.19 < 0.45: raised to the target
    third = np.array([[1.0, 0.2, 0.0], [-0.8, 1.0, 0.3]])  # a conflict
    expected = gradvac_reference([first, second, third], beta=0.5)
    assert np.allclose(expected[0], first.sum(axis=0))
    assert not np.allclose(expected[1], second.sum(axis=0))  # the state matters: PCGrad would leave it alone
    weighting = make("gradvac", tasks=["a", "b"])
    assert np.allclose(combine(weighting, first, ["a", "b"])[0], expected[0], atol=1e-7)
    resumed = through_checkpoint(weighting, "gradvac", tasks=["a", "b"])
    for w in (weighting, resumed):
        assert np.allclose(combine(w, second, ["a", "b"])[0], expected[1], atol=1e-7)
        assert np.allclose(combine(w, third, ["a", "b"])[0], expected[2], atol=1e-7)


# ---------------------------------------------------------------------------------------------- bargaining, fairness
def test_nash_mtl_weights_satisfy_the_bargaining_condition():
    for seed in range(3):
        jacobian = np.random.default_rng(seed).normal(size=(3, 6)) * np.array([[1.0], [2.0], [0.5]])
        gramian = jacobian @ jacobian.T
        direction, weights = combine(make("nash-mtl", max_norm=0.0), jacobian)
        alpha = np.array([weights[t] for t in TASKS])
        assert (alpha > 0).all()
        assert np.linalg.norm(gramian @ alpha - 1 / alpha) < 1e-2 * np.linalg.norm(1 / alpha)  # (GᵀGα)_i = 1/α_i
        solution = least_squares(lambda a, g=gramian: g @ a - 1 / a, np.ones(3), bounds=(1e-9, np.inf), xtol=1e-15,
                                 ftol=1e-15, gtol=1e-15).x
        assert np.allclose(alpha, solution, rtol=1e-2)
        assert np.allclose(direction, alpha @ jacobian, rtol=1e-5)
        clipped, _ = combine(make("nash-mtl"), jacobian)  # max_norm 1
        assert np.linalg.norm(clipped) <= 1 + 1e-6


def test_fairgrad_weights_are_alpha_fair():
    for alpha in (1.0, 2.0, 0.5):
        jacobian = np.random.default_rng(int(alpha * 10)).normal(size=(3, 5))
        direction, weights = combine(make("fairgrad", alpha=alpha), jacobian)
        w = np.array([weights[t] for t in TASKS])
        assert (w > 0).all()
        assert np.allclose((jacobian @ jacobian.T) @ w, w ** (-1 / alpha), rtol=1e-4)  # Eq. 4
        assert np.allclose(direction, w @ jacobian, rtol=1e-5)


def test_config_makes_equal_angles_with_every_task_within_their_span():
    for seed in range(3):
        jacobian = conflicting(seed, dims=6)
        direction, weights = combine(make("config"), jacobian)
        assert weights == {}
        cosines = jacobian @ direction / (np.linalg.norm(jacobian, axis=1) * np.linalg.norm(direction))
        assert np.allclose(cosines, cosines[0], atol=1e-6) and cosines[0] > 0
        unit = direction / np.linalg.norm(direction)
        assert np.linalg.norm(direction) == pytest.approx((jacobian @ unit).sum(), rel=1e-6)  # length Σ g_iᵀĝ
        coefficients = np.linalg.lstsq(jacobian.T, direction, rcond=None)[0]  # it lies in the rows' span
        assert np.allclose(jacobian.T @ coefficients, direction, atol=1e-6)


# ---------------------------------------------------------------------------------------------- robust aggregation
def krum_reference(rows: np.ndarray, byzantine: int, selected: int) -> np.ndarray:
    squared = ((rows[:, None] - rows[None]) ** 2).sum(axis=-1)
    np.fill_diagonal(squared, np.inf)
    scores = np.sort(squared, axis=1)[:, : len(rows) - byzantine - 2].sum(axis=1)  # s(i) = Σ_{i→j} ‖V_i − V_j‖²
    return rows[np.argsort(scores)[:selected]].mean(axis=0)


def test_krum_selects_by_the_papers_squared_distance_score():
    five = ["a", "b", "c", "d", "e"]
    rows = np.array([[-6.0, -1.0], [3.0, -4.0], [-1.0, 1.0], [2.0, -4.0], [0.0, 3.0]])
    direction, weights = combine(make("krum", tasks=five, n_byzantine=1), rows, five)
    assert np.array_equal(direction, rows[2]) and weights["c"] == 1.0 and sum(weights.values()) == 1.0
    assert np.array_equal(direction, krum_reference(rows, 1, 1))  # (summing unsquared distances would pick row d)
    for seed in range(3):
        rows = np.random.default_rng(seed).normal(size=(5, 4))
        for byzantine, selected in [(0, 1), (1, 2), (2, 3)]:
            got, _ = combine(make("krum", tasks=five, n_byzantine=byzantine, n_selected=selected), rows, five)
            assert np.allclose(got, krum_reference(rows, byzantine, selected))
    with pytest.raises(MtlError, match="needs at least 4 tasks"):
        make("krum", n_byzantine=1)


def test_trimmed_mean_drops_the_extremes_of_every_coordinate():
    rows = np.random.default_rng(3).normal(size=(5, 6))
    five = ["a", "b", "c", "d", "e"]
    for trim in (1, 2):
        expected = np.sort(rows, axis=0)[trim: 5 - trim].mean(axis=0)
        direction, weights = combine(make("trimmed-mean", tasks=five, trim_number=trim), rows, five)
        assert np.allclose(direction, expected) and weights == {}
    assert np.allclose(combine(make("trimmed-mean"), rows[:3])[0], np.median(rows[:3], axis=0))
    with pytest.raises(MtlError, match="needs at least 5 tasks"):
        make("trimmed-mean", trim_number=2)


# ---------------------------------------------------------------------------------------------- stateful weights
def test_excess_mtl_follows_the_exponentiated_excess_risk_update_and_keeps_its_state():
    rng = np.random.default_rng(0)
    steps = [rng.normal(size=(3, 4)) * np.array([[1.0], [0.2], [3.0]]) for _ in range(3)]
    step_size = 0.5
    weights, squares, baseline, expected = np.full(3, 1 / 3), np.zeros((3, 4)), None, []
    for jacobian in steps:
        squares = squares + jacobian ** 2
        risk = (jacobian ** 2 / np.sqrt(squares + 1e-7)).sum(axis=1)  # Ê_i = g_iᵀ H_i⁻¹ g_i, H_i AdaGrad's diagonal
        if baseline is None:
            baseline = risk  # the first step's risks are the baseline, used raw at that step
        else:
            risk = risk / (baseline + 1e-7)
        weights = weights * np.exp(step_size * risk)
        weights = weights / weights.sum()  # Eq. 9
        expected.append(weights)
    weighting = make("excess-mtl", robust_step_size=step_size)
    got = [combine(weighting, steps[0])]
    resumed = through_checkpoint(weighting, "excess-mtl", robust_step_size=step_size)
    for w in (weighting, resumed):
        rest = [combine(w, jacobian) for jacobian in steps[1:]]
        for (direction, recorded), jacobian, alpha in zip(got + rest, steps, expected, strict=True):
            assert np.allclose([recorded[t] for t in TASKS], alpha, rtol=1e-5)
            assert np.allclose(direction, alpha @ jacobian, rtol=1e-6, atol=1e-9)


def test_pcd_follows_the_target_within_the_progress_constraints_of_the_others():
    rng = np.random.default_rng(1)
    jacobian = rng.normal(size=(3, 5))
    jacobian[1] -= 2.0 * jacobian[0] + jacobian[2]  # the target (b, row 1) conflicts with the others
    tau = 0.3
    units = jacobian / np.linalg.norm(jacobian, axis=1, keepdims=True)  # first step: s_i = 1/‖g_i‖ (ε aside)
    others = units[[0, 2]]
    result = minimize(lambda d: 0.5 * np.sum((d - units[1]) ** 2), units[1], jac=lambda d: d - units[1],
                      method="SLSQP", constraints=[{"type": "ineq", "fun": lambda d: others @ d - tau,
                                                    "jac": lambda d: others}], options={"ftol": 1e-15})
    assert result.success
    expected = result.x * np.linalg.norm(jacobian[1]) / np.linalg.norm(result.x)
    direction, weights = combine(make("pcd", target="b", tau=tau), jacobian)
    assert np.allclose(direction, expected, rtol=1e-5, atol=1e-6)
    assert (units[[0, 2]] @ direction / np.linalg.norm(direction)).min() >= tau * (1 - 1e-6)
    assert weights["b"] > 0 and set(weights) == set(TASKS)
    # the moving averages of the squared norms are state: a resumed weighting continues them, a fresh one does not
    second = jacobian * np.array([[3.0], [0.5], [1.0]])
    weighting = make("pcd", target="b", tau=tau, beta=0.5)
    combine(weighting, jacobian)
    resumed = through_checkpoint(weighting, "pcd", target="b", tau=tau, beta=0.5)
    continued, fresh = combine(weighting, second)[0], combine(make("pcd", target="b", tau=tau, beta=0.5), second)[0]
    assert np.array_equal(combine(resumed, second)[0], continued) and not np.allclose(continued, fresh)
    with pytest.raises(MtlError, match="needs a --target"):
        make("pcd", target=None)


def mgda_two(jacobian: np.ndarray) -> np.ndarray:
    g1, g2 = jacobian
    gamma = np.clip((g2 - g1) @ g2 / ((g1 - g2) @ (g1 - g2)), 0.0, 1.0)
    return np.array([gamma, 1 - gamma])


def test_cr_mogm_smooths_the_base_weights_with_a_moving_average():
    steps = [np.array([[1.0, 0.0], [0.0, 2.0]]), np.array([[1.0, 0.5], [-0.5, 1.0]]),
             np.array([[2.0, 0.0], [0.0, 1.0]])]
    for alpha, initial in [(0.9, None), (0.5, {"a": 0.2, "b": 0.8})]:
        previous = None if initial is None else np.array([initial["a"], initial["b"]])
        options = dict(alpha=alpha, initial_weights=initial, tasks=["a", "b"])
        weighting = make("cr-mogm", **options)
        for k, jacobian in enumerate(steps):
            if k == 1:
                weighting = through_checkpoint(weighting, "cr-mogm", **options)
            raw = mgda_two(jacobian)
            smoothed = raw if previous is None else alpha * previous + (1 - alpha) * raw
            direction, weights = combine(weighting, jacobian, ["a", "b"])
            assert np.allclose([weights["a"], weights["b"]], smoothed, atol=1e-6)
            assert np.allclose(direction, smoothed @ jacobian, atol=1e-6)
            previous = smoothed


# ---------------------------------------------------------------------------------------------- per-instance methods
class Linear(torch.nn.Module):
    """Shared θ and one scalar head per task: instance n of task t has loss (x_{t,n}·θ − y_{t,n})² + h_t."""

    def __init__(self, dims: int, tasks) -> None:
        super().__init__()
        self.theta = torch.nn.Parameter(torch.linspace(-0.3, 0.4, dims, dtype=torch.float64))
        self.heads = torch.nn.ParameterDict({t: torch.nn.Parameter(torch.zeros((), dtype=torch.float64))
                                             for t in tasks})

    def losses(self, data) -> dict[str, torch.Tensor]:
        return {t: (x @ self.theta - y) ** 2 + self.heads[t] for t, (x, y) in data.items()}


def per_instance_gradients(model: Linear, data) -> dict[str, np.ndarray]:
    """∂ℓ_{t,n}/∂θ for every instance, by hand: 2(x·θ − y)x."""
    theta = model.theta.detach().numpy()
    return {t: 2 * ((x.numpy() @ theta) - y.numpy())[:, None] * x.numpy() for t, (x, y) in data.items()}


def data_of(seed: int, sizes: dict[str, int], dims: int = 4):
    g = torch.Generator().manual_seed(seed)
    return {t: (torch.randn(n, dims, generator=g, dtype=torch.float64),
                torch.randn(n, generator=g, dtype=torch.float64)) for t, n in sizes.items()}


def backward(weighting, model: Linear, data) -> tuple[np.ndarray, dict[str, float], dict[str, float]]:
    """One backward of ``weighting`` on ``model``: the shared gradient, the heads' gradients and the weights."""
    model.zero_grad(set_to_none=True)
    weighting.model = model
    step = Step(losses=model.losses(data), features={}, target="a", index=0, epoch=0, progress=0.0,
                shared_parameters=[model.theta])
    weighting.backward(step)
    return model.theta.grad.numpy().copy(), {t: float(h.grad) for t, h in model.heads.items()}, dict(step.weights)


def test_mo_do_updates_lambda_with_the_two_half_batch_estimate_and_steps_with_the_whole_batch():
    sizes = {"a": 5, "b": 4, "c": 6}
    model = Linear(4, sizes)
    gamma, rho = 0.3, 0.1
    weighting = make("mo-do", gamma=gamma, rho=rho)
    weighting.model = model
    lam = np.full(3, 1 / 3)
    for seed in range(3):
        if seed == 2:
            weighting = through_checkpoint(weighting, "mo-do", gamma=gamma, rho=rho)
        data = data_of(seed, sizes)
        grads = per_instance_gradients(model, data)
        first = np.stack([grads[t][0::2].mean(axis=0) for t in TASKS])  # ξ: the even rows
        second = np.stack([grads[t][1::2].mean(axis=0) for t in TASKS])  # ξ′: the odd rows
        whole = np.stack([grads[t].mean(axis=0) for t in TASKS])
        lam = simplex_projection(lam - gamma * (first @ second.T @ lam + rho * lam))  # Eq. 2.9a
        shared, heads, weights = backward(weighting, model, data)
        assert np.allclose([weights[t] for t in TASKS], lam, atol=1e-6)
        assert np.allclose(shared, lam @ whole, rtol=1e-9, atol=1e-12)  # Eq. 2.9b on the whole batch
        assert heads == {t: pytest.approx(1.0) for t in TASKS}  # each head: its own task's gradient, once
    # a task with a single instance cannot be split: the previous λ, no update
    data = data_of(9, {"a": 1, "b": 4, "c": 6})
    whole = np.stack([g.mean(axis=0) for g in per_instance_gradients(model, data).values()])
    shared, _, weights = backward(weighting, model, data)
    assert np.allclose(shared, lam @ whole) and np.allclose([weights[t] for t in TASKS], lam, atol=1e-6)


def test_sdmgrad_solves_for_its_weights_on_the_two_half_batch_estimate():
    sizes = {"a": 4, "b": 6, "c": 5}
    model = Linear(4, sizes)
    lr, momentum, n_iter, lam = 10.0, 0.5, 20, 0.3
    weighting = make("sdmgrad")
    w = np.full(3, 1 / 3)
    preferred = np.full(3, 1 / 3)
    for seed in range(3):
        if seed == 2:  # w is warm-started from the previous step: it is state
            weighting = through_checkpoint(weighting, "sdmgrad")
        data = data_of(seed, sizes)
        grads = per_instance_gradients(model, data)
        first = np.stack([grads[t][0::2].mean(axis=0) for t in TASKS])
        second = np.stack([grads[t][1::2].mean(axis=0) for t in TASKS])
        two_sample = first @ second.T
        scale = np.sqrt(np.clip(np.diag(two_sample), 0, None)).mean()
        normalised = two_sample / (scale ** 2 + 1e-8)
        velocity = None
        for _ in range(n_iter):  # projected SGD with momentum on ½‖J(w + λw̃)‖²
            gradient = normalised @ (w + lam * preferred)
            velocity = gradient if velocity is None else momentum * velocity + gradient
            w = simplex_projection(w - lr * velocity)
        combined = (w + lam * preferred) / (1 + lam)
        whole = np.stack([grads[t].mean(axis=0) for t in TASKS])
        shared, heads, weights = backward(weighting, model, data)
        assert np.allclose([weights[t] for t in TASKS], combined, atol=1e-6)
        assert np.allclose(shared, combined @ whole, rtol=1e-7, atol=1e-10)
        assert heads == {t: pytest.approx(1.0) for t in TASKS}


def test_moco_tracks_the_gradients_and_updates_lambda_as_written_in_the_paper():
    rng = np.random.default_rng(4)
    steps = [rng.normal(size=(3, 5)) * 0.7 for _ in range(3)]
    beta, beta_sigma, gamma, gamma_sigma, rho = 0.5, 0.5, 0.4, 0.5, 0.1
    options = dict(beta=beta, beta_sigma=beta_sigma, gamma=gamma, gamma_sigma=gamma_sigma, rho=rho)
    y, lam = np.zeros((3, 5)), np.full(3, 1 / 3)
    weighting = make("moco", **options)
    for k, jacobian in enumerate(steps, start=1):
        if k == 3:
            weighting = through_checkpoint(weighting, "moco", **options)
        y = y - beta / k ** beta_sigma * (y - jacobian)  # Eq. 3.3
        lam = simplex_projection(lam - gamma / k ** gamma_sigma * (y @ y.T + rho * np.eye(3)) @ lam)  # Eq. 3.5
        direction, weights = combine(weighting, jacobian)
        assert np.allclose([weights[t] for t in TASKS], lam, atol=1e-6)
        assert np.allclose(direction, lam @ y, rtol=1e-9, atol=1e-12)  # Eq. 3.6
    assert len(set(np.round(lam, 6))) == 3  # the weights moved away from uniform


def test_db_mtl_balances_log_losses_and_rescales_the_averaged_gradients_to_the_largest_norm():
    sizes = {"a": 4, "b": 3, "c": 5}
    model = Linear(4, sizes)
    beta = 0.8
    weighting = make("db-mtl", beta=beta)
    averages = np.zeros((3, 4))
    for seed in range(3):
        if seed == 2:
            weighting = through_checkpoint(weighting, "db-mtl", beta=beta)
        data = data_of(seed, sizes)
        means = {t: float(v.detach().mean()) for t, v in model.losses(data).items()}
        grads = per_instance_gradients(model, data)
        logged = np.stack([grads[t].mean(axis=0) / (means[t] + 1e-8) for t in TASKS])  # ∇ log ℓ_t
        averages = beta * averages + (1 - beta) * logged
        norms = np.linalg.norm(averages, axis=1)
        scales = norms.max() / (norms + 1e-8)
        shared, heads, weights = backward(weighting, model, data)
        assert np.allclose([weights[t] for t in TASKS], scales, rtol=1e-6)
        assert np.allclose(shared, scales @ averages, rtol=1e-9, atol=1e-12)
        assert heads == {t: pytest.approx(1.0 / (means[t] + 1e-8)) for t in TASKS}  # the heads see log ℓ_t too


# ---------------------------------------------------------------------------------------------- shared behaviour
def test_a_one_task_step_is_plain_backpropagation_and_options_name_every_task():
    gradient = np.array([[1.0, -2.0, 0.5]])
    for name in ("upgrad", "nash-mtl", "moco", "mo-do"):
        direction, weights = combine(make(name), gradient, ["b"])
        assert np.array_equal(direction, gradient[0]) and weights == {"b": 1.0}
    with pytest.raises(MtlError, match="missing c"):
        make("upgrad", pref_vector={"a": 1.0, "b": 1.0})
    with pytest.raises(MtlError, match="not in the step: z"):
        make("graddrop", leak={"a": 0.1, "b": 0.1, "c": 0.1, "z": 0.1})


def test_rows_keep_the_order_of_the_first_step():
    """A stateful method's state belongs to tasks, not to positions: a later step listing them in another order gets
    the same result as the same rows in the first order."""
    jacobians = [conflicting(seed) for seed in range(2)]
    straight, shuffled = make("gradvac", seed=5), make("gradvac", seed=5)
    combine(straight, jacobians[0])
    combine(shuffled, jacobians[0])
    expected, _ = combine(straight, jacobians[1])
    got, weights = combine(shuffled, jacobians[1][[2, 0, 1]], ["c", "a", "b"])
    assert np.allclose(got, expected) and set(weights) == set(TASKS)


# ---------------------------------------------------------------------------------------------- real runs
NAMES = ["upgrad", "mgda", "cagrad", "nash-mtl", "imtl-g", "aligned-mtl", "dualproj", "graddrop", "gradvac",
         "fairgrad", "config", "krum", "trimmed-mean", "excess-mtl", "pcd", "cr-mogm", "mo-do", "sdmgrad", "pcgrad",
         "moco", "db-mtl"]
UNWEIGHTED = {"graddrop", "config", "trimmed-mean"}  # a mask, an angle construction, a coordinate-wise statistic
RESUMED = {"nash-mtl", "gradvac", "moco", "db-mtl", "mo-do"}  # stateful: crashed, then resumed
TINY = ["--backbone", "tiny", "--log-every", "1", "--batch-size", "8", "--max-length", "32", "--limit", "24",
        "--eval-limit", "8", "-q"]


def test_every_name_is_registered_in_the_gradient_family():
    assert set(NAMES) <= set(mtl.available("weighting"))
    for name in NAMES:
        weighting = mtl.create("weighting", name)
        assert weighting.family == "gradient" and weighting.computes_gradients and weighting.supports_distributed


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_every_method_trains_with_the_all_sampler_and_logs_its_weights(tmp_path, monkeypatch, name):
    steps = 4 if name in RESUMED else 2
    args = ["run", "--weighting", name, "--sampler", "all", "--max-steps", str(steps), "--checkpoint-every", "2", *TINY]
    result = invoke_cli(*args, "-o", str(tmp_path / "whole"))
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    trained = [r for r in records if "tasks" in r]
    assert [r["step"] for r in trained] == list(range(steps))
    for record in trained:
        assert len(record["tasks"]) == 3
        logged = {key for key in record if key.startswith("weight.")}
        if name in UNWEIGHTED:
            assert not logged
        else:
            assert logged == {f"weight.{task}" for task in record["tasks"]}
            assert all(np.isfinite(record[key]) for key in logged)
    if name not in RESUMED:
        return
    crash_at(monkeypatch, 3)  # checkpoint after step 2, crash in step 3
    crashed = tmp_path / "crashed"
    result = invoke_cli(*args, "-o", str(crashed))
    assert isinstance(result.exception, Crash)
    monkeypatch.undo()
    saved = checkpoint.deserialise(RunFolder(crashed).latest_checkpoint().read_bytes())
    assert saved["loop"]["step"] == 2 and saved["weighting"]  # the method's state is in the checkpoint
    result = invoke_cli("run", "--resume", str(crashed), "-q")
    assert result.exit_code == 0, result.output
    assert run_files(crashed) == run_files(tmp_path / "whole")


def test_an_option_naming_other_tasks_is_a_one_line_error(tmp_path):
    result = invoke_cli("run", "--weighting", "upgrad", "--sampler", "all", "--set", "upgrad.pref_vector=a:1,b:2",
                        "--max-steps", "1", *TINY, "-o", str(tmp_path / "run"))
    assert_one_line_error(result, "weighting 'upgrad'", "pref_vector", "missing demo-paraphrase")
