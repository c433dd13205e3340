"""A third-party weighting that puts a module between backbone and heads, and export/predict through the contract
(DESIGN.md, "Additions": a plugin says how its target's inference is rebuilt and which figures its scalars make).

tests/fixtures/mtl-gated-plugin is pip-installed into a private folder and used through the real `mtl` command
line: `mtl run`, `mtl export`, `mtl predict` and `mtl eval` on the run and on the export, `mtl plot`. Core names
no plugin: the export records the weighting and its options, `Weighting.inference_module` rebuilds the module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import TINY_RUN, assert_one_line_error, invoke_cli

from mtl import Weighting, hookimpl
from mtl.runs.config import RunConfig
from mtl.training.trainer import Trainer

TARGET, AUX = "demo-paraphrase", "demo-sentiment"
PAIRS = [("The lawyer followed the man at the station.", "The attorney trailed the man at the train station."),
         ("A cat slept on the warm red sofa all afternoon.", "The dog barked."),
         ("He sold the old car.", "She bought a new house near the river last spring.")]
LINES = "".join(json.dumps({"sentence1": a, "sentence2": b}) + "\n" for a, b in PAIRS)


def mtl(*args, plugin=None, input=None) -> subprocess.CompletedProcess:
    """The real `mtl` command line in a subprocess (as conftest's run_mtl, with stdin), the gated plugin installed
    when ``plugin`` (its folder on PYTHONPATH)."""
    env = {**os.environ, **({"PYTHONPATH": str(plugin)} if plugin else {})}
    return subprocess.run([sys.executable, "-m", "mtl.cli", *[str(a) for a in args]], input=input or "",
                          capture_output=True, text=True, env=env)


@pytest.fixture(scope="module")
def gated(gated_plugin_path, tmp_path_factory):
    """One tiny `mtl run` with the gated-residual weighting (rank 8, every step logged), and `mtl export` of it."""
    root = tmp_path_factory.mktemp("gated")
    run, out = root / "run", root / "export"
    result = mtl("run", *TINY_RUN, "--target", TARGET, "--aux", AUX, "--weighting", "gated-residual",
                 "--set", "tiny.hidden_size=32", "--set", "gated-residual.rank=8", "--set", "gated-residual.init=0.5",
                 "--lr", "1e-2", "--eval-limit", "40", "--log-every", "1", "-o", run, plugin=gated_plugin_path)
    assert result.returncode == 0, result.stderr[-3000:]
    exported = mtl("export", run, "--output", out, plugin=gated_plugin_path)
    assert exported.returncode == 0, exported.stderr[-3000:]
    return {"run": run, "export": out, "stdout": exported.stdout, "plugin": gated_plugin_path}


@pytest.mark.slow
def test_the_plugin_logs_its_gates(gated):
    records = [json.loads(line) for line in (gated["run"] / "metrics.jsonl").read_text().splitlines() if line.strip()]
    gates = [r for r in records if f"gated.gate.{TARGET}" in r]
    assert gates and all(0.0 < r[f"gated.gate.{TARGET}"] < 1.0 and f"gated.gate.{AUX}" in r for r in gates)


@pytest.mark.slow
def test_export_writes_the_feature_map_through_the_contract(gated):
    from safetensors.torch import load_file

    folder = gated["export"]
    assert "Not a plain transformers classifier" in gated["stdout"] and "'gated-residual'" in gated["stdout"]
    manifest = json.loads((folder / "mtl_export.json").read_text())
    assert manifest["kind"] == "feature-map" and manifest["loadable_with_transformers"] is False
    assert manifest["feature_map"] == {"weighting": "gated-residual", "options": {"rank": "8", "init": "0.5"},
                                       "encoder": "encoder", "head": "mtl_head.safetensors"}
    assert f"gates.{AUX}" in " ".join(manifest["plugged_out"])  # the other task's gate is not needed
    assert not (folder / "config.json").exists() and (folder / "encoder" / "config.json").is_file()
    head = load_file(folder / "mtl_head.safetensors")
    assert set(head) == {f"gates.{TARGET}", "residual.0.weight", "residual.0.bias", "residual.1.weight",
                         "residual.1.bias", "classifier.weight", "classifier.bias"}
    assert head["residual.0.weight"].shape == (8, 32)  # the run's option rank=8, rebuilt from the manifest
    # the model/ folder the trainer wrote at the end of the run is the same kind of export
    own = json.loads((gated["run"] / "model" / "mtl_export.json").read_text())
    assert own["kind"] == "feature-map" and own["feature_map"] == manifest["feature_map"]


@pytest.mark.slow
def test_predict_on_the_run_and_on_the_export_agree(gated):
    from_run = mtl("predict", gated["run"], plugin=gated["plugin"], input=LINES)
    from_export = mtl("predict", gated["export"], plugin=gated["plugin"], input=LINES)
    assert from_run.returncode == 0 and from_export.returncode == 0, (from_run.stderr, from_export.stderr)
    a = [json.loads(line) for line in from_run.stdout.splitlines()]
    b = [json.loads(line) for line in from_export.stdout.splitlines()]
    assert len(a) == len(b) == len(PAIRS)
    for x, y in zip(a, b, strict=True):
        assert x["label"] == y["label"] and x["logits"] == pytest.approx(y["logits"], abs=1e-5)


@pytest.mark.slow
def test_eval_on_the_export_equals_eval_json(gated):
    expected = json.loads((gated["run"] / "eval.json").read_text())[TARGET]["dev"]
    for where in (gated["run"], gated["export"]):
        result = mtl("eval", where, "--json", plugin=gated["plugin"])
        assert result.returncode == 0, result.stderr
        got = json.loads(result.stdout)
        assert got["task"] == TARGET and got["examples"] == 40 and got["metrics"] == expected, where


@pytest.mark.slow
def test_the_export_needs_the_plugin_that_rebuilds_its_module(gated):
    result = mtl("predict", gated["export"], input=LINES)  # the plugin is not installed here
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "gated-residual" in result.stderr and "not installed" in result.stderr


@pytest.mark.slow
def test_plot_draws_the_plugin_figure(gated, tmp_path):
    result = mtl("plot", gated["run"], "-o", tmp_path, plugin=gated["plugin"])
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "gated.png").is_file() and f"wrote {tmp_path / 'gated.png'}" in result.stdout


# ------------------------------------------------------------------------------------------------ in process


def _tiny(tmp_path, **overrides) -> RunConfig:
    values = dict(target=TARGET, aux=[AUX], backbone="tiny", batch_size=8, max_length=32, lr=1e-3, max_steps=3,
                  eval_limit=30, log_every=1, seed=2, output=str(tmp_path / "run"),
                  options={"tiny": {"hidden_size": 32}})
    values.update(overrides)
    return RunConfig(**values)


class Shift(Weighting):
    """A feature map (pooled + a learnt vector per task) but no inference_module: not exportable."""

    def setup(self, run):
        from torch import nn

        class Map(nn.Module):
            def __init__(self):
                super().__init__()
                self.shift = nn.ParameterDict({t: nn.Parameter(torch.zeros(run.hidden_size)) for t in run.tasks})

            def forward(self, pooled, task):
                return pooled + self.shift[task]

        run.model.feature_map = Map()


class ShiftPlugin:
    @hookimpl
    def register_weightings(self, register):
        register("shift", Shift, description="test: a feature map without inference_module")


def test_a_feature_map_without_inference_module_is_a_one_line_error(register_plugin, tmp_path):
    register_plugin(ShiftPlugin())
    Trainer(_tiny(tmp_path, weighting="shift")).train()
    run = tmp_path / "run"
    assert not (run / "model").exists()  # the trainer warned and kept the run
    assert_one_line_error(invoke_cli("export", str(run), "--output", str(tmp_path / "out")),
                          "'shift'", "inference_module", "`mtl predict RUN` still works")
    assert not (tmp_path / "out").exists()
    from mtl.runs.predict import load_predictor

    rows = load_predictor(run).predict(PAIRS)  # the run folder itself still predicts
    assert len(rows) == len(PAIRS) and all(r["label"] in ("not_paraphrase", "paraphrase") for r in rows)
