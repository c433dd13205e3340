"""Every built-in sampler: draws follow its reported probabilities, formulas, phases, seeds and resuming."""

from __future__ import annotations

import copy
import json
from collections import Counter

import pytest
import torch
from conftest import TINY_RUN, assert_one_line_error, invoke_cli
from scipy.stats import chisquare
from typer.testing import CliRunner

import mtl
from mtl.cli import app
from mtl.errors import MtlError

SIZES = {"t": 300, "a": 900, "b": 1800}  # run order: target first
TARGET = "t"
DRAWS = 6000
P_MIN = 1e-4  # a chi-square test at this level fails by chance once in ten thousand runs; the seeds are fixed


def make(name, sizes=SIZES, target=TARGET, total_steps=100_000, seed=0, **options):
    sampler = mtl.create("sampler", name, **options)
    sampler.setup(dict(sizes), target, total_steps, torch.Generator().manual_seed(seed))
    return sampler


def draw(sampler, steps, progress=None, total_steps=100_000):
    return [sampler.tasks(s, s / total_steps if progress is None else progress) for s in steps]


def assert_frequencies_match(sampler, progress, steps=range(DRAWS)):
    probs = sampler.probabilities(progress)
    assert sum(probs.values()) == pytest.approx(1.0)
    counts = Counter(names[0] for names in draw(sampler, steps, progress))
    assert set(counts) <= {n for n, p in probs.items() if p > 0}  # never a task of probability 0
    names = [n for n, p in probs.items() if p > 0]
    n = sum(counts.values())
    observed = [counts[name] for name in names]
    expected = [probs[name] * n for name in names]
    if len(names) > 1:
        assert chisquare(observed, expected).pvalue > P_MIN, (observed, expected)
    else:
        assert observed == expected


@pytest.mark.parametrize("name, options, progress", [
    ("proportional", {}, 0.0),
    ("uniform", {}, 0.0),
    ("temperature", {}, 0.0),
    ("temperature", {"T": 5.0, "cap": 1000}, 0.0),
    ("adaptive", {}, 0.0),
    ("adaptive", {}, 0.6),
])
def test_random_samplers_draw_with_their_probabilities(name, options, progress):
    assert_frequencies_match(make(name, **options), progress)


def test_sequential_draws_auxiliary_tasks_proportionally_in_its_first_phase():
    sampler = make("sequential")
    assert sampler.aux_steps > DRAWS
    probs = sampler.probabilities(0.0)
    assert probs == pytest.approx({"t": 0.0, "a": 900 / 2700, "b": 1800 / 2700})
    assert_frequencies_match(sampler, 0.0)


def test_round_robin_and_all_are_deterministic():
    rr = make("round-robin")
    assert rr.probabilities(0.3) == pytest.approx({"t": 1 / 3, "a": 1 / 3, "b": 1 / 3})
    assert draw(rr, range(7)) == [["t"], ["a"], ["b"], ["t"], ["a"], ["b"], ["t"]]
    counts = Counter(names[0] for names in draw(rr, range(3000)))
    assert counts == {"t": 1000, "a": 1000, "b": 1000}
    everything = make("all")
    assert everything.probabilities(0.0) == pytest.approx({"t": 1 / 3, "a": 1 / 3, "b": 1 / 3})
    assert all(names == ["t", "a", "b"] for names in draw(everything, range(100)))


def test_temperature_probabilities_are_jiants_formula():
    sizes = {"t": 100, "a": 400, "b": 10_000}
    probs = make("temperature", sizes, T=2.0).probabilities(0.0)
    raw = {"t": 10.0, "a": 20.0, "b": 100.0}  # N^(1/2)
    assert probs == pytest.approx({k: v / 130.0 for k, v in raw.items()})
    # T = 1 is the proportional sampler
    assert make("temperature", sizes, T=1.0).probabilities(0.0) == pytest.approx(
        make("proportional", sizes).probabilities(0.0))
    # a large T approaches uniform
    hot = make("temperature", sizes, T=1e6).probabilities(0.0)
    assert all(abs(p - 1 / 3) < 1e-4 for p in hot.values())
    # the cap is applied before the temperature: min(N, 400)^(1/2) = 10, 20, 20
    capped = make("temperature", sizes, T=2.0, cap=400).probabilities(0.0)
    assert capped == pytest.approx({"t": 0.2, "a": 0.4, "b": 0.4})
    # text options as the CLI gives them
    assert make("temperature", sizes, T="1", cap="none").probabilities(0.0) == pytest.approx(
        {k: v / 10_500 for k, v in sizes.items()})


@pytest.mark.parametrize("options, message", [
    ({"T": 0}, "T must be > 0 (got 0.0)"),
    ({"T": -1.5}, "T must be > 0 (got -1.5)"),
    ({"cap": 0}, "cap must be >= 1"),
])
def test_temperature_rejects_bad_options(options, message):
    with pytest.raises(MtlError, match=r"sampler 'temperature': " + message.replace("(", r"\(").replace(")", r"\)")):
        mtl.create("sampler", "temperature", **options)


@pytest.mark.parametrize("total_steps", [1, 2, 7, 50, 91, 1000])
def test_sequential_trains_every_auxiliary_step_before_the_target(total_steps):
    sampler = make("sequential", total_steps=total_steps)
    boundary = round(total_steps * 2700 / 3000)
    assert sampler.aux_steps == boundary
    drawn = draw(sampler, range(total_steps), total_steps=total_steps)
    assert all(names[0] != "t" for names in drawn[:boundary])
    assert all(names == ["t"] for names in drawn[boundary:])
    for step in range(total_steps):
        probs = sampler.probabilities(step / total_steps)
        assert probs["t"] == (0.0 if step < boundary else 1.0)
        assert sum(probs.values()) == pytest.approx(1.0)


def test_sequential_without_target_is_proportional_and_target_alone_is_the_target():
    no_target = make("sequential", target=None, total_steps=10)
    assert no_target.probabilities(0.9) == pytest.approx(make("proportional").probabilities(0.9))
    assert_frequencies_match(make("sequential", target=None), 0.5)
    alone = make("sequential", sizes={"t": 10}, total_steps=5)
    assert draw(alone, range(5), total_steps=5) == [["t"]] * 5


ALL_SAMPLERS = ["proportional", "uniform", "temperature", "adaptive", "round-robin", "sequential", "all"]


@pytest.mark.parametrize("name", ALL_SAMPLERS)
def test_state_dict_round_trip_continues_the_same_sequence(name):
    total = 400
    sampler = make(name, total_steps=total, seed=3)
    draw(sampler, range(150), total_steps=total)
    state = copy.deepcopy(sampler.state_dict())
    rest = draw(sampler, range(150, total), total_steps=total)
    resumed = make(name, total_steps=total, seed=99)  # a different generator, then the saved state
    resumed.load_state_dict(state)
    assert draw(resumed, range(150, total), total_steps=total) == rest


@pytest.mark.parametrize("name", ALL_SAMPLERS)
def test_same_seed_same_sequence(name):
    total = 300
    first = draw(make(name, total_steps=total, seed=5), range(total), total_steps=total)
    assert draw(make(name, total_steps=total, seed=5), range(total), total_steps=total) == first
    if name not in ("round-robin", "all"):
        assert draw(make(name, total_steps=total, seed=6), range(total), total_steps=total) != first


def test_new_samplers_through_the_cli(tmp_path):
    runner = CliRunner()
    base = ["run", "--backbone", "tiny", "--batch-size", "8", "--max-length", "32", "-q", "--log-every", "1",
            "--limit", "40", "--eval-limit", "16"]
    out = tmp_path / "rr"
    result = runner.invoke(app, [*base, "--max-steps", "5", "--sampler", "round-robin", "-o", str(out)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    tasks = [r["tasks"] for r in records if "tasks" in r]
    assert tasks == [["demo-paraphrase"], ["demo-similarity"], ["demo-sentiment"], ["demo-paraphrase"],
                     ["demo-similarity"]]
    # three tasks of 40 examples each: the last third of the run trains the target
    out = tmp_path / "seq"
    result = runner.invoke(app, [*base, "--max-steps", "9", "--sampler", "sequential", "-o", str(out)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    tasks = [r["tasks"][0] for r in records if "tasks" in r]
    assert "demo-paraphrase" not in tasks[:6] and tasks[6:] == ["demo-paraphrase"] * 3


def test_bad_temperature_through_the_cli_is_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "run"
    result = invoke_cli("run", *TINY_RUN, "-o", str(out), "--sampler", "temperature", "--set", "temperature.T=0")
    assert assert_one_line_error(result) == "Error: sampler 'temperature': T must be > 0 (got 0.0)"
    assert not out.exists()
