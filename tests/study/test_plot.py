"""`mtl plot`: PNG figures from a run's metrics.jsonl, each drawn only when its records are there."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from mtl import hookimpl
from mtl.cli import app

runner = CliRunner()
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny real runs (in process): uniform, mamt and mmoe, every step logged."""
    from mtl.runs.config import RunConfig
    from mtl.training.trainer import Trainer

    root = tmp_path_factory.mktemp("runs")
    out = {}
    for weighting, sampler in (("uniform", "proportional"), ("mamt", "adaptive"), ("mmoe", "proportional")):
        config = RunConfig(target="demo-sentiment", aux=["demo-similarity"], weighting=weighting, sampler=sampler,
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


@pytest.mark.slow
def test_uniform_run_draws_its_figures_and_skips_absent_ones(runs, tmp_path):
    result = plot(runs["uniform"], "--output", tmp_path)
    assert result.exit_code == 0, result.output
    for name in ("loss.png", "weights.png", "sampler.png", "eval.png"):
        assert f"wrote {tmp_path / name}" in result.stdout
        assert_png(tmp_path / name)
    assert "skipped similarity.png: no mamt.similarity" in result.stdout
    assert "skipped gates.png: no mmoe.gate" in result.stdout
    assert not (tmp_path / "similarity.png").exists() and not (tmp_path / "gates.png").exists()


@pytest.mark.slow
def test_mamt_run_has_the_similarity_figure(runs, tmp_path):
    records = [json.loads(line) for line in (runs["mamt"] / "metrics.jsonl").read_text().splitlines()]
    assert any("mamt.similarity" in r for r in records)  # the premise: auxiliary steps were logged
    result = plot(runs["mamt"], "-o", tmp_path)
    assert result.exit_code == 0, result.output
    for name in ("loss.png", "weights.png", "similarity.png", "sampler.png", "eval.png"):
        assert_png(tmp_path / name)
    assert "skipped gates.png" in result.stdout


@pytest.mark.slow
def test_mmoe_run_has_the_gate_figure(runs, tmp_path):
    result = plot(runs["mmoe"], "-o", tmp_path)
    assert result.exit_code == 0, result.output
    assert_png(tmp_path / "gates.png")
    assert "skipped similarity.png" in result.stdout


@pytest.mark.slow
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
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0], result.stderr


def test_malformed_metrics_line_names_file_and_line(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 0, "loss.a": 1.0}\n{oops\n')
    result = plot(tmp_path)
    assert result.exit_code == 1 and "metrics.jsonl:2: invalid JSON" in result.stderr


def test_metrics_that_are_not_utf8_name_file_and_line(tmp_path):
    (tmp_path / "metrics.jsonl").write_bytes(b'{"step": 0, "loss.a": 1.0}\n{"step": 1, "loss.a": \xff}\n')
    result = plot(tmp_path)
    assert result.exit_code == 1 and "metrics.jsonl:2: not UTF-8 text (byte 0xff)" in result.stderr
    assert "Traceback" not in result.output


def test_an_invalid_json_line_says_where_in_the_line(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 0, "loss.a": 1.0}\n{"step": "a\tb"}\n')
    result = plot(tmp_path)
    assert result.exit_code == 1
    assert "metrics.jsonl:2: invalid JSON: Invalid control character at (column" in result.stderr


@pytest.mark.slow
def test_an_out_folder_of_other_files_needs_overwrite_and_keeps_them(runs, tmp_path):
    out = tmp_path / "figures"
    out.mkdir()
    (out / "loss.png").write_bytes(b"mine")
    (out / "notes.txt").write_text("keep")
    result = plot(runs["uniform"], "--output", out)
    assert result.exit_code == 1 and f"--output {out} already exists and is not empty" in result.stderr
    assert (out / "loss.png").read_bytes() == b"mine"
    result = plot(runs["uniform"], "--output", out, "--overwrite")
    assert result.exit_code == 0, result.output
    assert_png(out / "loss.png")
    assert (out / "notes.txt").read_text() == "keep"
    file = tmp_path / "a-file"
    file.write_text("x")
    result = plot(runs["uniform"], "--output", file)
    assert result.exit_code == 1 and f"--output {file} exists and is not a folder" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_the_default_folder_is_drawn_again_without_overwrite(runs):
    assert plot(runs["mamt"]).exit_code == 0
    again = plot(runs["mamt"])
    assert again.exit_code == 0, again.output
    assert_png(runs["mamt"] / "plots" / "loss.png")


def test_smooth_is_a_debiased_ema():
    from mtl.study.figures import smooth

    assert smooth([2.0, 2.0, 2.0], 0.9) == pytest.approx([2.0, 2.0, 2.0])
    assert smooth([1.0, 3.0], 0.5) == pytest.approx([1.0, (0.25 * 1 + 0.5 * 3) / 0.75])
    assert smooth([1.0, 5.0], 0.0) == [1.0, 5.0]


# ---------------------------------------------------------------- figures are plugins (hook register_figures)
@contextlib.contextmanager
def plugin(obj, name):
    """Register an in-process plugin for the block, unregistered in finally (as tests/contract/test_registry.py)."""
    from mtl.contract import loader

    loader.load_plugins()
    loader.pm.register(obj, name=name)
    try:
        yield obj
    finally:
        loader.pm.unregister(obj)


def fake_run(folder, **scalars):
    """A run folder written by hand: config.json and metrics.jsonl (loss, weight, p, one eval) plus ``scalars``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"target": "rte", "aux": ["mnli"]}))
    lines = []
    for step in range(12):
        record = {"step": step, "epoch": 0, "loss.rte": 1.0 / (step + 1), "loss.mnli": 0.7, "weight.mnli": 0.5,
                  "p.rte": 0.4, "p.mnli": 0.6}
        record.update({key: value(step) for key, value in scalars.items()})
        lines.append(json.dumps(record))
    lines.append(json.dumps({"step": 12, "epoch": 0, "eval.rte.dev.accuracy": 0.6}))
    (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def draw_probe(run):
    """The README's example figure, on a scalar the test plugin "logged"."""
    steps, values = run.series("probe.factor")
    if not values:
        return "no probe.factor records (not a probe run)"
    fig = run.figure()
    ax = fig.subplots()
    run.line(ax, steps, run.smooth(values), label="factor")
    run.title(ax, "probe: factor over training")
    run.finish(ax, "step", "factor")
    return fig


class ProbeFigures:
    @hookimpl
    def register_figures(self, register):
        register("probe", draw_probe, description="probe's factor over training")


@pytest.mark.slow
def test_a_plugin_figure_is_drawn_from_its_own_scalar_and_listed(tmp_path):
    from conftest import invoke_cli

    run = fake_run(tmp_path / "run", **{"probe.factor": lambda s: 1.0 + 0.1 * s})
    with plugin(ProbeFigures(), "probe-figures"):
        result = plot(run, "-o", tmp_path / "out")
        assert result.exit_code == 0, result.output
        assert f"wrote {tmp_path / 'out' / 'probe.png'}" in result.stdout
        assert_png(tmp_path / "out" / "probe.png")
        lines = result.stdout.splitlines()  # core's figures first, then the plugins' in name order
        order = [line.split()[-1].rpartition("/")[2] if line.startswith("wrote") else line.split()[1].rstrip(":")
                 for line in lines]
        assert order[:4] == ["loss.png", "weights.png", "sampler.png", "eval.png"]
        assert order[4:] == sorted(order[4:]) and "probe.png" in order[4:]
        # no records of its scalar: skipped with the plugin's own reason
        other = fake_run(tmp_path / "other")
        skipped = plot(other, "-o", tmp_path / "o2").stdout
        assert "skipped probe.png: no probe.factor records (not a probe run)" in skipped

        listed = json.loads(invoke_cli("plugins", "--json", "--kind", "figure").stdout)["plugins"]
        row = next(r for r in listed if r["name"] == "probe")
        assert row["kind"] == "figure" and row["plugin"] == "probe-figures"
        assert row["description"] == "probe's factor over training"
        assert "probe" in invoke_cli("plugins").stdout
        shown = invoke_cli("plugins", "show", "probe")
        assert shown.exit_code == 0 and "figure probe" in shown.stdout and "no options" in shown.stdout, shown.output
        assert json.loads(invoke_cli("plugins", "show", "probe", "--json").stdout)[0]["options"] == []
    assert "probe" not in __import__("mtl").available("figure")


class BrokenFigures:
    @hookimpl
    def register_figures(self, register):
        def boom(run):
            raise RuntimeError("boom\nwith a second line")

        register("aaa-raises", boom)
        register("aab-lazy", "no_such_module_xyz:draw")
        register("aac-wrong", lambda run: 42)
        register("loss", lambda run: run.figure())  # a core figure's name: never overwrites loss.png
        register("zzz-fine", draw_probe)


@pytest.mark.slow
def test_a_figure_that_raises_is_a_one_line_skip_and_the_others_are_written(tmp_path):
    run = fake_run(tmp_path / "run", **{"probe.factor": lambda s: float(s)})
    with plugin(BrokenFigures(), "broken-figures"):
        result = plot(run, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    out = result.stdout
    assert ("skipped aaa-raises.png: figure 'aaa-raises' (plugin 'broken-figures') failed: "
            "RuntimeError: boom with a second line\n") in out
    assert "skipped aab-lazy.png: figure 'aab-lazy' (plugin 'broken-figures') could not be loaded" in out
    assert "skipped aac-wrong.png: figure 'aac-wrong' (plugin 'broken-figures') returned int" in out
    assert "skipped loss.png: figure 'loss' (plugin 'broken-figures')" in out
    for name in ("loss.png", "weights.png", "sampler.png", "eval.png", "zzz-fine.png"):
        assert f"wrote {tmp_path / 'out' / name}" in out
        assert_png(tmp_path / "out" / name)
    assert not (tmp_path / "out" / "aaa-raises.png").exists()
    assert all(line.startswith(("wrote ", "skipped ")) for line in out.splitlines()), out


def test_builtin_figures_are_registered_by_their_plugins():
    import mtl
    from mtl.contract import loader

    assert {"similarity", "gates"} <= set(mtl.available("figure"))
    assert loader.registry().get("figure", "similarity")[0].plugin == "mtl.plugins.weightings.mamt"
    assert loader.registry().get("figure", "gates")[0].plugin == "mtl.plugins.weightings.mmoe"


def test_builtin_figures_from_hand_written_records(tmp_path):
    gate = {f"mmoe.gate.{t}.{e}": (lambda s, e=e: [0.2, 0.3, 0.5][e]) for t in ("rte", "mnli") for e in range(3)}
    run = fake_run(tmp_path / "run", **{"mamt.similarity": lambda s: 0.1 * s - 0.3,
                                        "mamt.tau": lambda s: max(0.0, 0.1 * s - 0.3)}, **gate)
    result = plot(run, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert_png(tmp_path / "out" / "similarity.png")
    assert_png(tmp_path / "out" / "gates.png")


def test_listing_figures_imports_neither_torch_nor_matplotlib():
    code = ("import sys, mtl\nmtl.available('figure')\n"
            "print('torch' in sys.modules, 'matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_run_records_is_a_read_only_view(tmp_path):
    from mtl.study.figures import RunRecords

    run = RunRecords(fake_run(tmp_path / "run", **{"x.y": lambda s: s}), smoothing=0.5)
    assert run.target == "rte" and run.smoothing == 0.5 and len(run.records) == 12 and len(run.evals) == 1
    assert run.series("x.y") == (list(range(12)), [float(s) for s in range(12)])
    assert run.keys("loss.") == ["loss.rte", "loss.mnli"] and run.tasks("p.") == ["rte", "mnli"]
    assert run.ordered(["zeta", "mnli", "rte"]) == ["rte", "mnli", "zeta"] and run.label("rte") == "rte (target)"
    with pytest.raises(TypeError):
        run.records[0]["loss.rte"] = 0.0
    with pytest.raises(AttributeError):
        run.records = []
