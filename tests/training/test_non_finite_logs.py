"""What a plugin's ``log()`` returns that is not finite is written to metrics.jsonl as null (strict JSON), counted
in summary.json and named in one warning; readers take a null as a missing point.

Found by a fault sweep: a weighting whose log() returned NaN wrote ``NaN`` into metrics.jsonl, which no strict JSON
parser reads.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from conftest import TINY_RUN, invoke_cli
from helpers.runs import run_files, whole_and_crashed

from mtl import Weighting, hookimpl
from mtl.runs.files import json_line, json_safe
from mtl.training.trainer import Trainer

BAD = ("t.nan", "t.inf", "t.ninf")


class LogsNonFinite(Weighting):
    def log(self):
        return {"t.nan": float("nan"), "t.inf": torch.tensor(float("inf")), "t.ninf": np.float32("-inf"),
                "t.fine": torch.tensor(0.25)}


@pytest.fixture
def nan_weighting(register_plugin):
    class Plugin:
        @hookimpl
        def register_weightings(self, register):
            register("t-nan", LogsNonFinite)

    register_plugin(Plugin(), name="nan-weighting")


def strict(line: str) -> dict:
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(line, parse_constant=refuse)


def test_json_safe_replaces_every_non_finite_value_and_names_it():
    record = {"a": 1.5, "b": float("nan"), "c": [1, float("inf"), {"d": -math.inf}], "e": torch.tensor(float("nan")),
              "f": torch.tensor([1.0, float("inf")]), "g": np.float64("nan"), "h": np.float32(2.0), "i": True,
              "j": "NaN", "k": None, "l": (torch.tensor(3), np.int64(4))}
    replaced: list[str] = []
    safe = json_safe(record, replaced)
    assert safe == {"a": 1.5, "b": None, "c": [1, None, {"d": None}], "e": None, "f": [1.0, None], "g": None,
                    "h": 2.0, "i": True, "j": "NaN", "k": None, "l": [3, 4]}
    assert replaced == ["b", "c[1]", "c[2].d", "e", "f[1]", "g"]
    assert strict(json_line(record)) == safe
    assert json_safe({"x": 1.0}, None) == {"x": 1.0}  # without a list to fill


@pytest.mark.slow
def test_non_finite_logs_are_null_counted_and_named(nan_weighting, tmp_path):
    out = tmp_path / "run"
    result = invoke_cli("run", *TINY_RUN, "--target", "demo-sentiment", "--aux", "demo-similarity",
                        "--weighting", "t-nan", "--log-every", "1", "-o", str(out))
    assert result.exit_code == 0, result.output
    lines = (out / "metrics.jsonl").read_text().splitlines()
    records = [strict(line) for line in lines]  # every line is strict JSON
    training = [r for r in records if "t.fine" in r]
    assert len(training) == 4  # --max-steps 4, --log-every 1
    for record in training:
        assert all(record[key] is None for key in BAD) and record["t.fine"] == 0.25
    summary = json.loads((out / "summary.json").read_text())
    assert summary["non_finite_logged"] == {"count": 4 * len(BAD), "keys": list(BAD)}
    warnings = [line for line in result.stderr.splitlines() if "not finite" in line]
    assert warnings == ["mtl: warning: weighting 't-nan' logged 12 values that are not finite (NaN or infinity) as "
                        "null in metrics.jsonl (keys: t.nan, t.inf, t.ninf)"]

    # a null where a figure's series has a number is a missing point: one loss value nulled by hand
    first = next(i for i, r in enumerate(records) if "loss.demo-sentiment" in r)
    records[first]["loss.demo-sentiment"] = None
    (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    figures = tmp_path / "figures"
    plotted = invoke_cli("plot", str(out), "--output", str(figures))
    assert plotted.exit_code == 0, plotted.output
    assert (figures / "loss.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_a_run_without_non_finite_logs_counts_none(tmp_path):
    from helpers.runs import config

    result = Trainer(config(tmp_path / "run", epochs=1, limit=16, eval_limit=16)).train()
    assert result["summary"]["non_finite_logged"] == {"count": 0, "keys": []}


@pytest.mark.slow
def test_the_count_survives_resume_exactly(nan_weighting, tmp_path, monkeypatch):
    whole_and_crashed(tmp_path, monkeypatch, weighting="t-nan")
    result = Trainer.resuming(tmp_path / "crashed").prepare().train()
    assert run_files(tmp_path / "crashed") == run_files(tmp_path / "whole")  # metrics.jsonl byte for byte
    summaries = [json.loads((tmp_path / name / "summary.json").read_text()) for name in ("whole", "crashed")]
    records = [strict(line) for line in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    counted = {"count": len(BAD) * sum("t.fine" in r for r in records), "keys": list(BAD)}
    assert summaries[0]["non_finite_logged"] == summaries[1]["non_finite_logged"] == counted
    assert result["summary"]["non_finite_logged"] == counted
