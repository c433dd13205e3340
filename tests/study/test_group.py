"""`mtl group`: budgeted task grouping (Standley et al., ICML 2020) — the exact search against brute force, a
planted grouping, the higher-order approximation on a hand-written bench folder, affinity and networks files,
and every user error as one line."""

from __future__ import annotations

import itertools
import json
import math
import random
from pathlib import Path

import pytest
from conftest import assert_one_line_error, invoke_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mtl.errors import MtlError
from mtl.runs.config import RunConfig
from mtl.study import grouping
from mtl.study.grouping import Network


# ---------------------------------------------------------------------------------------------- helpers
def brute_force(tasks, networks, budget):
    """The best objective over every set of networks within the budget that covers every task (None: none)."""
    best = None
    cheapest = min(n.cost for n in networks)
    for size in range(1, min(len(networks), int(budget / cheapest + 1e-9)) + 1):
        for combo in itertools.combinations(networks, size):
            if sum(n.cost for n in combo) > budget + 1e-9:
                continue
            if set().union(*(n.tasks for n in combo)) != set(tasks):
                continue
            value = sum(max(n.scores[t] for n in combo if t in n.tasks) for t in tasks)
            best = value if best is None else max(best, value)
    return best


def write_networks(path: Path, networks) -> Path:
    path.write_text(json.dumps({"networks": networks}))
    return path


@st.composite
def instances(draw):
    """Up to 10 tasks, each with a network of its own, up to 6 more networks of 2+ tasks, costs 0.5 to 3."""
    n = draw(st.integers(1, 10))
    tasks = [f"t{i}" for i in range(n)]
    score = st.floats(0.0, 1.0, allow_nan=False)
    cost = st.sampled_from([0.5, 1.0, 1.0, 1.0, 1.5, 2.0, 3.0])
    networks = [Network((t,), {t: draw(score)}, draw(cost)) for t in tasks]
    if n >= 2:
        for _ in range(draw(st.integers(0, 6))):
            group = draw(st.lists(st.sampled_from(tasks), min_size=2, max_size=n, unique=True))
            networks.append(Network(tuple(group), {t: draw(score) for t in group}, draw(cost)))
    budget = draw(st.sampled_from([0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, n / 2, max(0.5, n - 1.5), float(n)]))
    return tasks, networks, budget


# ---------------------------------------------------------------------------------------------- the search
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_branch_and_bound_finds_the_exhaustive_optimum(instance):
    tasks, networks, budget = instance
    expected = brute_force(tasks, networks, budget)
    if expected is None:
        with pytest.raises(MtlError, match="cannot cover every task"):
            grouping.select(tasks, networks, budget)
        return
    selection = grouping.select(tasks, networks, budget)
    assert selection.objective == pytest.approx(expected, abs=1e-9)
    assert selection.cost <= budget + 1e-9
    assert selection.cost == pytest.approx(sum(n.cost for n in selection.networks))
    for task, (i, score) in selection.served.items():  # each task served by its best chosen network
        assert score == max(n.scores[task] for n in selection.networks if task in n.tasks)
        assert selection.networks[i].scores[task] == score
    assert selection.objective == pytest.approx(sum(s for _, s in selection.served.values()))
    assert all(any(i == j for j, _ in selection.served.values()) for i in range(len(selection.networks)))


@settings(max_examples=40, deadline=None)
@given(instances())
def test_the_cheapest_cover_is_the_cheapest(instance):
    tasks, networks, _ = instance
    cost, chosen = grouping.min_cover_cost(tasks, networks)
    assert set().union(*(networks[k].tasks for k in chosen)) == set(tasks)
    best = min(sum(n.cost for n in combo) for size in range(1, len(networks) + 1)
               for combo in itertools.combinations(networks, size)
               if set().union(*(n.tasks for n in combo)) == set(tasks))
    assert cost == pytest.approx(best)


PLANTED = [("a", "b", "c"), ("d", "e"), ("f", "g")]


def planted_networks():
    """Every group of up to 3 of 7 tasks: a task scores 0.5, +0.1 per partner of its planted group, −0.15 per
    task from another group, ± 0.01 noise; so the planted groups are each task's best network."""
    rng = random.Random(7)
    home = {t: group for group in PLANTED for t in group}
    networks = []
    for size in (1, 2, 3):
        for group in itertools.combinations("abcdefg", size):
            scores = {t: 0.5 + 0.1 * sum(u in home[t] for u in group if u != t)
                      - 0.15 * sum(u not in home[t] for u in group) + rng.uniform(-0.01, 0.01) for t in group}
            networks.append({"tasks": list(group), "scores": scores})
    return networks


@pytest.mark.parametrize("budget", [3, 5, 7])
def test_a_planted_grouping_is_recovered(tmp_path, budget):
    path = write_networks(tmp_path / "networks.json", planted_networks())
    result = invoke_cli("group", str(path), "--budget", str(budget), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert sorted(tuple(n["tasks"]) for n in data["networks"]) == PLANTED
    assert data["cost"] == 3 and data["min_cost"] == 3
    expected = {t: n["scores"][t] for n in planted_networks() if tuple(n["tasks"]) in PLANTED for t in n["tasks"]}
    assert {t: s["score"] for t, s in data["served"].items()} == pytest.approx(expected)
    assert data["objective"] == pytest.approx(sum(expected.values()))
    commands = sorted(n["command"] for n in data["networks"])
    assert commands == ["mtl run --target a --aux b,c", "mtl run --target d --aux e", "mtl run --target f --aux g"]


README_NETWORKS = [  # README's example (`mtl group networks.json`)
    {"tasks": ["rte"], "scores": {"rte": 0.60}}, {"tasks": ["mrpc"], "scores": {"mrpc": 0.80}},
    {"tasks": ["stsb"], "scores": {"stsb": 0.85}}, {"tasks": ["rte", "mrpc"], "scores": {"rte": 0.66, "mrpc": 0.79}},
    {"tasks": ["rte", "stsb"], "scores": {"rte": 0.64, "stsb": 0.86}},
    {"tasks": ["mrpc", "stsb"], "scores": {"mrpc": 0.82, "stsb": 0.83}},
]


def test_a_network_trains_for_the_task_it_serves(tmp_path):
    """With budget 3 each pair serves one task: rte+stsb is chosen for stsb, so stsb is its target, not rte."""
    path = write_networks(tmp_path / "networks.json", README_NETWORKS)
    data = json.loads(invoke_cli("group", str(path), "--budget", "3", "--json").stdout)
    commands = {"+".join(n["tasks"]): (n["serves"], n["command"]) for n in data["networks"]}
    assert commands == {"rte+mrpc": (["rte"], "mtl run --target rte --aux mrpc"),
                        "rte+stsb": (["stsb"], "mtl run --target stsb --aux rte"),
                        "mrpc+stsb": (["mrpc"], "mtl run --target mrpc --aux stsb")}
    data = json.loads(invoke_cli("group", str(path), "--budget", "2", "--json").stdout)
    commands = {"+".join(n["tasks"]): (n["serves"], n["command"]) for n in data["networks"]}
    assert commands == {"rte+stsb": (["rte", "stsb"], "mtl run --target rte --aux stsb"),
                        "mrpc+stsb": (["mrpc"], "mtl run --target mrpc --aux stsb")}


def test_a_measured_network_keeps_the_target_its_runs_had():
    measured = Network(("rte", "mrpc"), {"rte": 0.6, "mrpc": 0.8}, kind="measured", options="o.json")
    assert grouping.command(measured, ["mrpc"]) == "mtl run --config o.json --target rte --aux mrpc"
    given = Network(("rte", "mrpc", "stsb"), {"rte": 0.6, "mrpc": 0.8, "stsb": 0.8})
    assert grouping.command(given, ["mrpc", "stsb"]) == "mtl run --target mrpc --aux rte,stsb"
    assert grouping.command(given) == "mtl run --target rte --aux mrpc,stsb"


def test_a_budget_below_the_cheapest_cover_is_one_line(tmp_path):
    path = write_networks(tmp_path / "n.json", planted_networks())
    result = invoke_cli("group", str(path), "--budget", "2")
    assert_one_line_error(result, "--budget 2 cannot cover every task", "costs 3")
    # costs: two networks that cover everything cost 1.5 together, one task alone costs 2
    networks = [{"tasks": ["a"], "scores": {"a": 1}, "cost": 2}, {"tasks": ["b"], "scores": {"b": 1}},
                {"tasks": ["a", "b"], "scores": {"a": 1, "b": 1}, "cost": 1.5}]
    path = write_networks(tmp_path / "c.json", networks)
    assert_one_line_error(invoke_cli("group", str(path), "--budget", "1.4"), "costs 1.5")
    assert invoke_cli("group", str(path), "--budget", "1.5").exit_code == 0


def test_text_output_names_networks_scores_objective_and_commands(tmp_path):
    path = write_networks(tmp_path / "n.json", [
        {"tasks": ["rte"], "scores": {"rte": 0.6}}, {"tasks": ["mrpc"], "scores": {"mrpc": 0.8}},
        {"tasks": ["stsb"], "scores": {"stsb": 0.85}},
        {"tasks": ["rte", "mrpc"], "scores": {"rte": 0.66, "mrpc": 0.79}},
        {"tasks": ["rte", "stsb"], "scores": {"rte": 0.64, "stsb": 0.86}}])
    result = invoke_cli("group", str(path), "--budget", "2")
    assert result.exit_code == 0, result.output
    out = result.stdout
    # budget 2: rte+stsb serves rte 0.64 and stsb 0.86, mrpc alone 0.80 -> 2.30 (rte+mrpc with stsb: 2.30 too,
    # 0.66 + 0.79 + 0.85); the first found of equal objectives is kept
    # budget 2: rte+mrpc and rte+stsb (rte served by the first, 0.66) beat any network with a task alone (2.30)
    assert "Objective (sum of served scores): 2.3100 at cost 2 (every task alone: 2.2500)" in out
    assert "  rte+mrpc  cost 1  serves rte 0.6600, mrpc 0.7900" in out
    assert "  rte+stsb  cost 1  serves stsb 0.8600" in out
    assert "  rte   0.6600 by rte+mrpc, alone 0.6000 (+0.0600)" in out
    assert "  mtl run --target rte --aux mrpc\n  mtl run --target stsb --aux rte\n" in out  # the task it serves
    assert "Add your data and training options" in out
    data = json.loads(invoke_cli("group", str(path), "--budget", "2", "--json").stdout)
    assert data["objective"] == pytest.approx(2.31) and data["cost"] == 2
    assert [n["serves"] for n in data["networks"]] == [["rte", "mrpc"], ["stsb"]]
    big = json.loads(invoke_cli("group", str(path), "--budget", "3", "--json").stdout)
    assert big["objective"] == pytest.approx(0.66 + 0.8 + 0.86)  # rte by rte+mrpc, mrpc alone, stsb by rte+stsb
    assert {t: s["network"] for t, s in big["served"].items()} == {"rte": "rte+mrpc", "mrpc": "mrpc",
                                                                  "stsb": "rte+stsb"}


# ---------------------------------------------------------------------------------------------- a bench folder
TASK_METRICS = {"rte": ("accuracy",), "mrpc": ("f1", "accuracy"), "stsb": ("pearson", "spearman"),
                "sst2": ("accuracy",)}


def pair_score(task, partner, seed):
    """A made-up but fixed score of ``task`` trained with ``partner`` (None: alone), by seed."""
    base = {"rte": 0.60, "mrpc": 0.80, "stsb": 0.85, "sst2": 0.90}[task]
    help_ = {("rte", "mrpc"): 0.04, ("rte", "stsb"): 0.02, ("rte", "sst2"): -0.03, ("mrpc", "stsb"): 0.01,
             ("mrpc", "rte"): -0.01, ("stsb", "mrpc"): 0.005, ("sst2", "rte"): 0.0, ("mrpc", "sst2"): -0.02}
    return base + (help_.get((task, partner), 0.002) if partner else 0.0) + 0.001 * seed


def write_run(folder: Path, target: str, aux: list[str], weighting: str, seed: int, scores: dict[str, float]):
    """config.json, eval.json and summary.json as `mtl run` writes them (every task evaluated on dev)."""
    folder.mkdir(parents=True)
    config = RunConfig(target=target, aux=aux, weighting=weighting, backbone="tiny", seed=seed,
                       output=str(folder)).to_dict()
    config["plugins"] = {f"weighting.{weighting}": {"package": "mtl", "version": "0.1.0"}}
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    evaluation = {t: {"dev": {m: scores[t] - 0.1 * i for i, m in enumerate(TASK_METRICS[t])}} for t in [target, *aux]}
    (folder / "eval.json").write_text(json.dumps(evaluation, indent=2))
    primary = TASK_METRICS[target][0]
    (folder / "summary.json").write_text(json.dumps({
        "best_epoch": 0, "best_step": 4, "selection": f"{target}.dev.{primary}", "selection_value": scores[target],
        "steps": 4, "train_seconds": 1.0, "examples_per_second": 10.0, "peak_memory_mb": 500.0}))
    options = folder.parent / "run-options.json"
    if not options.exists():
        options.write_text(json.dumps({"target": target, "aux": aux, "weighting": weighting, "backbone": "tiny"}))


def write_pairs_bench(root: Path, tasks, seeds=(0, 1), strategy="uniform") -> Path:
    """A --pairs bench folder written by hand: DIR/<task>/single/seed-s and DIR/<a>+<b>/<strategy>/seed-s."""
    for t in tasks:
        for seed in seeds:
            write_run(root / t / "single" / f"seed-{seed}", t, [], "uniform", seed, {t: pair_score(t, None, seed)})
    for a, b in itertools.combinations(tasks, 2):
        for seed in seeds:
            write_run(root / f"{a}+{b}" / strategy / f"seed-{seed}", a, [b], strategy, seed,
                      {a: pair_score(a, b, seed), b: pair_score(b, a, seed)})
    strategies = [{"label": strategy, "weighting": strategy, "sampler": "proportional", "single": False, "stage": "",
                   "stage_regularizer": None}]
    (root / "bench.json").write_text(json.dumps({
        "format": "mtl-bench/1", "pairs": True, "tasks": list(tasks), "seeds": list(seeds), "strategies": strategies,
        "run_options": {"backbone": "tiny"}, "networks": [], "table": None}))
    return root


def mean_score(task, partner, seeds=(0, 1)):
    return sum(pair_score(task, partner, s) for s in seeds) / len(seeds)


def test_a_bench_folder_is_read_as_measured_networks(tmp_path):
    tasks = ["rte", "mrpc", "stsb", "sst2"]
    root = write_pairs_bench(tmp_path / "bench", tasks)
    candidates = grouping.load(root)
    assert candidates.kind == "bench" and candidates.tasks == tasks
    assert len(candidates.networks) == 4 + 6 and {n.kind for n in candidates.networks} == {"measured"}
    assert candidates.metrics == {"rte": "dev accuracy", "mrpc": "dev f1", "stsb": "dev pearson",
                                  "sst2": "dev accuracy"}
    by_tasks = {n.tasks: n for n in candidates.networks}
    for t in tasks:
        assert by_tasks[(t,)].scores[t] == pytest.approx(mean_score(t, None))  # mean over seeds, primary metric
        assert by_tasks[(t,)].label == "single" and by_tasks[(t,)].runs == 2
    for a, b in itertools.combinations(tasks, 2):
        net = by_tasks[(a, b)]
        assert net.scores == pytest.approx({a: mean_score(a, b), b: mean_score(b, a)})
        assert net.label == "uniform" and net.options == str(root / f"{a}+{b}" / "uniform" / "run-options.json")
    assert grouping.command(by_tasks[("rte", "mrpc")]) == (
        f"mtl run --config {root / 'rte+mrpc' / 'uniform' / 'run-options.json'} --target rte --aux mrpc")


def test_the_higher_order_approximation_is_the_mean_of_the_pair_scores(tmp_path):
    tasks = ["rte", "mrpc", "stsb", "sst2"]
    root = write_pairs_bench(tmp_path / "bench", tasks)
    candidates = grouping.load(root, higher_order=4)
    approximated = {n.tasks: n for n in candidates.networks if n.kind == "approximated"}
    assert sorted(approximated) == sorted([*itertools.combinations(tasks, 3), tuple(tasks)])
    for group, net in approximated.items():
        for t in group:
            pairs = [mean_score(t, u) for u in group if u != t]
            assert net.scores[t] == pytest.approx(sum(pairs) / len(pairs))
        assert net.cost == 1 and net.label == "uniform"
    # by hand for one: rte in rte+mrpc+stsb = (0.64 + 0.62) / 2 + the seeds' 0.0005
    assert approximated[("rte", "mrpc", "stsb")].scores["rte"] == pytest.approx(0.6305)
    assert len(grouping.load(root, higher_order=3).networks) == 10 + 4
    # a group measured as such is kept, not approximated
    for seed in (0, 1):
        write_run(root / "rte+mrpc+stsb" / "uniform" / f"seed-{seed}", "rte", ["mrpc", "stsb"], "uniform", seed,
                  {"rte": 0.7, "mrpc": 0.7, "stsb": 0.7})
    candidates = grouping.load(root, higher_order=3)
    triple = [n for n in candidates.networks if set(n.tasks) == {"rte", "mrpc", "stsb"}]
    assert len(triple) == 1 and triple[0].kind == "measured" and triple[0].scores["rte"] == pytest.approx(0.7)


def test_mtl_group_on_a_bench_with_the_higher_order_approximation(tmp_path):
    tasks = ["rte", "mrpc", "stsb", "sst2"]
    root = write_pairs_bench(tmp_path / "bench", tasks)
    plain = json.loads(invoke_cli("group", str(root), "--budget", "2", "--json").stdout)
    assert plain["candidate_kinds"] == {"measured": 10}
    result = invoke_cli("group", str(root), "--budget", "2", "--higher-order", "3", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["candidate_kinds"] == {"measured": 10, "approximated": 4}
    expected = grouping.select(tasks, grouping.load(root, higher_order=3).networks, 2).objective
    assert data["objective"] == pytest.approx(expected) and data["objective"] >= plain["objective"] - 1e-12
    # measured only: rte+mrpc and stsb+sst2; with triples, the approximated mrpc+stsb+sst2 serves mrpc, stsb
    # and sst2 better than their pairs do (each the mean of its two pair scores)
    assert plain["objective"] == pytest.approx(mean_score("rte", "mrpc") + mean_score("mrpc", "rte")
                                               + mean_score("stsb", "sst2") + mean_score("sst2", "stsb"))
    assert [(n["tasks"], n["kind"], n["serves"]) for n in data["networks"]] == [
        (["rte", "mrpc"], "measured", ["rte"]), (["mrpc", "stsb", "sst2"], "approximated", ["mrpc", "stsb", "sst2"])]
    group = ("mrpc", "stsb", "sst2")
    triple = {t: sum(mean_score(t, u) for u in group if u != t) / 2 for t in group}
    assert {t: data["served"][t]["score"] for t in triple} == pytest.approx(triple)
    assert data["objective"] == pytest.approx(mean_score("rte", "mrpc") + sum(triple.values()))
    assert [n["command"] for n in data["networks"]] == [  # bench networks start from the bench's run options
        f"mtl run --config {root / 'rte+mrpc' / 'uniform' / 'run-options.json'} --target rte --aux mrpc",
        f"mtl run --config {root / 'mrpc+stsb' / 'uniform' / 'run-options.json'} --target mrpc --aux stsb,sst2"]
    text = invoke_cli("group", str(root), "--budget", "2", "--higher-order", "3").stdout
    assert "  mrpc+stsb+sst2  cost 1  uniform (approximated): serves mrpc " in text
    assert "(dev accuracy)" in text and "Each command starts from the run options of the bench" in text


def test_a_bench_without_a_single_task_run_is_refused(tmp_path):
    root = write_pairs_bench(tmp_path / "bench", ["rte", "mrpc"])
    for seed in (0, 1):
        (root / "mrpc" / "single" / f"seed-{seed}" / "eval.json").unlink()  # never finished
    result = invoke_cli("group", str(root), "--budget", "2")
    assert_one_line_error(result, "no single-task network of 'mrpc'", "mtl bench --pairs")


def test_higher_order_without_pairs_is_refused(tmp_path):
    path = write_networks(tmp_path / "n.json", [{"tasks": ["a"], "scores": {"a": 1}},
                                                 {"tasks": ["b"], "scores": {"b": 1}}])
    assert_one_line_error(invoke_cli("group", str(path), "--budget", "2", "--higher-order", "3"),
                          "needs networks of two tasks")


# ---------------------------------------------------------------------------------------------- affinity
def write_affinity(path: Path, matrix) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "affinity.json").write_text(json.dumps({"matrix": matrix, "tasks": list(matrix)}))
    return path


AFFINITY = {"rte": {"rte": 0.5, "mrpc": 0.30, "stsb": -0.10, "sst2": 0.02},
            "mrpc": {"rte": 0.20, "mrpc": 0.4, "stsb": 0.0, "sst2": -0.05},
            "stsb": {"rte": -0.05, "mrpc": 0.01, "stsb": 0.3, "sst2": 0.15},
            "sst2": {"rte": 0.01, "mrpc": -0.02, "stsb": 0.10, "sst2": 0.2}}


def test_an_affinity_file_scores_a_group_by_the_affinity_onto_each_task(tmp_path):
    folder = write_affinity(tmp_path / "run", AFFINITY)
    candidates = grouping.load(folder)
    assert candidates.kind == "affinity" and candidates.tasks == list(AFFINITY)
    assert len(candidates.networks) == 2 ** 4 - 1
    by_tasks = {n.tasks: n for n in candidates.networks}
    assert by_tasks[("rte",)].scores == {"rte": 0.0}
    # task j's score in G = Σ_{i in G, i != j} Z_{i->j}: matrix[i][j] is the affinity of i onto j
    assert by_tasks[("rte", "mrpc", "stsb")].scores == pytest.approx({"rte": 0.20 - 0.05, "mrpc": 0.30 + 0.01,
                                                                     "stsb": -0.10 + 0.0})
    assert len(grouping.load(folder / "affinity.json", higher_order=2).networks) == 4 + 6
    # budget 2: {rte, mrpc} (0.2 + 0.3) and {stsb, sst2} (0.10 + 0.15) is the best total affinity
    data = json.loads(invoke_cli("group", str(folder), "--budget", "2", "--json").stdout)
    assert sorted(tuple(n["tasks"]) for n in data["networks"]) == [("rte", "mrpc"), ("stsb", "sst2")]
    assert data["objective"] == pytest.approx(0.75)
    brute = brute_force(candidates.tasks, candidates.networks, 2)
    assert data["objective"] == pytest.approx(brute)


@pytest.mark.parametrize("matrix, fragments", [
    ({"a": {"b": 0.1}, "b": {}}, ["no affinity of 'b' onto 'a'"]),
    ({"a": {"b": None}, "b": {"a": 0.1}}, ["affinity of 'a' onto 'b' is undefined"]),
    ({"a": {"b": "x"}, "b": {"a": 0.1}}, ["must be a number within ±1e12"]),
    ({"a": {"b": 1e308}, "b": {"a": 1e308}}, ["affinity of 'a' onto 'b' must be a number within ±1e12"]),  # fsum
    ({"--lr": {"b": 0.1}, "b": {"--lr": 0.1}}, ["'--lr' is not a task name"]),
    ({"a": 3}, ["expected \"matrix\""]),
    ({}, ["expected \"matrix\""]),
])
def test_a_malformed_affinity_file_is_one_line(tmp_path, matrix, fragments):
    folder = write_affinity(tmp_path / "run", matrix)
    result = invoke_cli("group", str(folder / "affinity.json"), "--budget", "1", "--from", "affinity")
    assert_one_line_error(result, str(folder / "affinity.json"), *fragments)


# ---------------------------------------------------------------------------------------------- networks files
def test_a_networks_file_parses_with_default_costs(tmp_path):
    path = write_networks(tmp_path / "n.json", [
        {"tasks": ["a"], "scores": {"a": 0.5}}, {"tasks": ["b"], "scores": {"b": 0.7}, "cost": 2},
        {"tasks": ["a", "b"], "scores": {"a": 0.6, "b": 0.65}, "cost": 1.5, "label": "big"}])
    candidates = grouping.load(path)
    assert candidates.kind == "networks" and candidates.tasks == ["a", "b"]
    assert [(n.tasks, n.cost, n.label) for n in candidates.networks] == [
        (("a",), 1.0, ""), (("b",), 2.0, ""), (("a", "b"), 1.5, "big")]
    # a+b alone (1.25) beats a and b alone (1.2, cost 3); a+b then b (cost 3.5) serves b its 0.7
    assert grouping.select(candidates.tasks, candidates.networks, 3).objective == pytest.approx(1.25)
    best = grouping.select(candidates.tasks, candidates.networks, 3.5)
    assert best.objective == pytest.approx(1.3) and best.cost == 3.5


@pytest.mark.parametrize("content, fragments", [
    ("{not json", ["invalid JSON"]),
    (json.dumps({"networks": []}), ["at least one network"]),
    (json.dumps({"networks": [{"tasks": "a", "scores": {"a": 1}}]}),
     ["networks[0]", "'tasks' must be a non-empty list"]),
    (json.dumps({"networks": [{"tasks": ["a", "a"], "scores": {"a": 1}}]}), ["task 'a' is listed twice"]),
    (json.dumps({"networks": [{"tasks": ["a"], "scores": {}}]}), ["networks[0]", "no score for 'a'"]),
    (json.dumps({"networks": [{"tasks": ["a"], "scores": {"a": "high"}}]}), ["score of 'a' must be a number within"]),
    (json.dumps({"networks": [{"tasks": ["a"], "scores": {"a": 1e308}}]}), ["score of 'a' must be a number within"]),
    (json.dumps({"networks": [{"tasks": ["a"], "scores": {"a": 1}, "cost": 1e308}]}), ["'cost' must be a positive "
                                                                                         "number up to 1e12"]),
    (json.dumps({"networks": [{"tasks": ["a b"], "scores": {"a b": 1}}]}), ["'tasks' must be a non-empty list of "
                                                                             "task names"]),
    (json.dumps({"networks": [{"tasks": ["a"], "scores": {"a": 1, "b": 2}}]}), ["a score for 'b'"]),
    (json.dumps({"networks": [{"tasks": ["a"], "scores": {"a": 1}, "cost": -1}]}), ["'cost' must be a positive"]),
    (json.dumps({"networks": [{"tasks": ["a"], "score": {"a": 1}}]}), ["unknown key 'score'", "Did you mean 'scores'"]),
    (json.dumps({"networks": [{"tasks": ["a"], "scores": {"a": 1}},
                              {"tasks": ["a", "b"], "scores": {"a": 1, "b": 1}}]}),
     ["no single-task network of 'b'"]),
])
def test_a_malformed_networks_file_is_one_line_naming_it(tmp_path, content, fragments):
    path = tmp_path / "networks.json"
    path.write_text(content)
    assert_one_line_error(invoke_cli("group", str(path), "--budget", "1"), str(path), *fragments)


def other_json(folder: Path) -> Path:
    (folder / "x.json").write_text('{"rows": []}')
    return folder / "x.json"


@pytest.mark.parametrize("make, args, fragments", [
    (lambda d: d / "nope", [], ["unknown source", "no such file or folder"]),
    (lambda d: d, [], ["unknown source", "neither affinity.json", "nor bench.json"]),
    (other_json, [], ["unknown source", "neither 'networks'"]),
    (lambda d: d, ["--from", "bnch"], ["unknown source kind 'bnch'", "Did you mean 'bench'"]),
    (lambda d: d / "nope", ["--from", "bench"], ["unknown source", "no such file or folder"]),
    (lambda d: write_networks(d / "n.json", planted_networks()), ["--higher-order", "1"],
     ["--higher-order must be >= 2"]),
])
def test_unknown_sources_and_bad_options_are_one_line(tmp_path, make, args, fragments):
    source = make(tmp_path)
    assert_one_line_error(invoke_cli("group", str(source), "--budget", "1", *args), *fragments)


@pytest.mark.parametrize("budget, fragments", [(None, ["give --budget B"]), ("0", ["--budget must be a positive"]),
                                               ("-2", ["--budget must be a positive"]),
                                               ("nan", ["--budget must be a positive"])])
def test_a_missing_or_bad_budget_is_one_line(tmp_path, budget, fragments):
    path = write_networks(tmp_path / "n.json", planted_networks())
    args = [] if budget is None else ["--budget", budget]
    assert_one_line_error(invoke_cli("group", str(path), *args), *fragments)


def test_too_many_candidates_ask_for_a_smaller_higher_order(tmp_path):
    matrix = {f"t{i}": {f"t{j}": 0.01 for j in range(20)} for i in range(20)}
    folder = write_affinity(tmp_path / "run", matrix)
    assert_one_line_error(invoke_cli("group", str(folder), "--budget", "5"), "candidate networks", "--higher-order")
    candidates = grouping.load(folder, higher_order=2)
    assert len(candidates.networks) == 20 + math.comb(20, 2)


@pytest.mark.parametrize("damage, fragments", [
    (lambda root: _edit(root / "bench.json", tasks=5),
     ["bench.json: a damaged bench file ('tasks' must be a list of two or more distinct task names)"]),
    (lambda root: (root / "bench.json").unlink(), ["unknown source", "neither affinity.json", "nor bench.json"]),
    (lambda root: _edit(root / "rte+mrpc" / "uniform" / "seed-0" / "config.json", target=["a", "b"]),
     ["config.json: --target: expected text"]),
    (lambda root: _edit(root / "rte+mrpc" / "uniform" / "seed-0" / "config.json", aux=5),
     ["config.json: --aux: expected a list, got 5"]),
])
def test_a_damaged_bench_folder_is_one_line(tmp_path, damage, fragments):
    root = write_pairs_bench(tmp_path / "bench", ["rte", "mrpc"])
    damage(root)
    assert_one_line_error(invoke_cli("group", str(root), "--budget", "2"), *fragments)


def _edit(path: Path, **changes) -> None:
    record = json.loads(path.read_text())
    record.update(changes)
    path.write_text(json.dumps(record))


def test_aux_as_text_in_a_runs_config_names_its_tasks(tmp_path):
    """A config.json whose aux is "mrpc" (text, as a config file may give it) is the task mrpc, not m, r, p, c."""
    root = write_pairs_bench(tmp_path / "bench", ["rte", "mrpc"])
    _edit(root / "rte+mrpc" / "uniform" / "seed-0" / "config.json", aux="mrpc")
    candidates = grouping.load(root)
    assert {n.tasks for n in candidates.networks} == {("rte",), ("mrpc",), ("rte", "mrpc")}
