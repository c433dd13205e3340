"""`mtl plot`: PNG figures from a run's metrics.jsonl, each drawn only when its records are there."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mtl.cli import app

runner = CliRunner()
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny real runs (in process): uniform, mamt and mmoe, every step logged."""
    from mtl.config import RunConfig
    from mtl.trainer import Trainer

    root = tmp_path_factory.mktemp("runs")
    out = {}
    for weighting, sampler in (("uniform", "proportional"), ("mamt", "adaptive"), ("mmoe", "proportional")):
        config = RunConfig(target="demo-similarity", aux=["demo-sentiment"], weighting=weighting, sampler=sampler,
                           backbone="tiny", max_steps=8, batch_size=8, max_length=32, eval_limit=32, seed=0,
                           log_every=1, output=str(root / weighting))
        Trainer(config).train()
        out[weighting] = root / weighting
    return out


def assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path
    assert len(data) > 5000, (path, len(data))


def plot(*args):
    return runner.invoke(app, ["plot", *map(str, args)])


def test_uniform_run_draws_its_figures_and_skips_absent_ones(runs, tmp_path):
    result = plot(runs["uniform"], "--out", tmp_path)
    assert result.exit_code == 0, result.output
    for name in ("loss.png", "weights.png", "sampler.png", "eval.png"):
        assert f"wrote {tmp_path / name}" in result.stdout
        assert_png(tmp_path / name)
    assert "skipped similarity.png: no mamt.similarity" in result.stdout
    assert "skipped gates.png: no mmoe.gate" in result.stdout
    assert not (tmp_path / "similarity.png").exists() and not (tmp_path / "gates.png").exists()


def test_mamt_run_has_the_similarity_figure(runs, tmp_path):
    records = [json.loads(l) for l in (runs["mamt"] / "metrics.jsonl").read_text().splitlines()]
    assert any("mamt.similarity" in r for r in records)  # the premise: auxiliary steps were logged
    result = plot(runs["mamt"], "-o", tmp_path)
    assert result.exit_code == 0, result.output
    for name in ("loss.png", "weights.png", "similarity.png", "sampler.png", "eval.png"):
        assert_png(tmp_path / name)
    assert "skipped gates.png" in result.stdout


def test_mmoe_run_has_the_gate_figure(runs, tmp_path):
    result = plot(runs["mmoe"], "-o", tmp_path)
    assert result.exit_code == 0, result.output
    assert_png(tmp_path / "gates.png")
    assert "skipped similarity.png" in result.stdout


def test_default_folder_is_inside_the_run(runs):
    result = plot(runs["uniform"])
    assert result.exit_code == 0, result.output
    assert_png(runs["uniform"] / "plots" / "loss.png")


@pytest.mark.parametrize("make, fragment", [
    (lambda p: p / "missing", "no such run folder"),
    (lambda p: p, "not a run folder (no metrics.jsonl"),
])
def test_not_a_run_folder_is_a_one_line_error(tmp_path, make, fragment):
    result = plot(make(tmp_path))
    assert result.exit_code == 1
    lines = [l for l in result.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0], result.stderr


def test_malformed_metrics_line_names_file_and_line(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 0, "loss.a": 1.0}\n{oops\n')
    result = plot(tmp_path)
    assert result.exit_code == 1 and "metrics.jsonl:2: invalid JSON" in result.stderr


def test_smooth_is_a_debiased_ema():
    from mtl.plot import smooth

    assert smooth([2.0, 2.0, 2.0], 0.9) == pytest.approx([2.0, 2.0, 2.0])
    assert smooth([1.0, 3.0], 0.5) == pytest.approx([1.0, (0.25 * 1 + 0.5 * 3) / 0.75])
    assert smooth([1.0, 5.0], 0.0) == [1.0, 5.0]
