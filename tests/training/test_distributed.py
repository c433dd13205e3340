"""Data parallelism with two real gloo processes on CPU (torchrun), compared with one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import run_mtl
from safetensors.torch import load_file

WORKER = Path(__file__).parents[1] / "helpers" / "ddp_worker.py"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def torchrun(*args: str, nproc: int = 2) -> None:
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                             f"--nproc-per-node={nproc}", *args], env=ENV, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


def alone(*args: str) -> None:
    env = {k: v for k, v in ENV.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    result = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize("weighting, sampler, batch", [
    ("uniform", "proportional", 16),  # shards 8 + 8
    ("uniform", "proportional", 15),  # 7 + 8
    ("uniform", "proportional", 1),  # a 1-example batch is trained whole on both
    ("upgrad", "all", 16),  # gradient methods: the Jacobian is averaged over the ranks before aggregating
    ("mgda", "all", 15),
    ("pcgrad", "all", 16),
    ("uw", "all", 16),  # a loss weighting with parameters of its own (log-variances)
])
@pytest.mark.slow
def test_one_step_on_two_ranks_equals_one_process_on_the_whole_batch(tmp_path, weighting, sampler, batch):
    args = (str(WORKER), "one-step", str(tmp_path), str(batch), weighting, sampler)
    torchrun(*args)
    alone(*args)
    single = json.loads((tmp_path / "single.json").read_text())
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    for rank in ranks:
        assert rank["tasks"] == single["tasks"] and rank["examples"] == single["examples"] == batch * len(rank["tasks"])
        for task in single["tasks"]:
            assert abs(rank["losses"][task] - single["losses"][task]) < 1e-5 * abs(single["losses"][task])
    if sampler == "all":
        assert len(single["tasks"]) == 3
    one = load_file(tmp_path / "single.safetensors")
    r0, r1 = load_file(tmp_path / "rank0.safetensors"), load_file(tmp_path / "rank1.safetensors")
    assert set(r0) == set(r1) == set(one)
    grads = [k for k in one if k.startswith("grad.")]
    assert len(grads) > 10
    if weighting == "uw":
        assert "grad.weighting.0" in grads
    for key in grads:  # each rank saw half the batch; the average over ranks is the whole batch's gradient
        assert torch.equal(r0[key], r1[key]), key
        assert torch.allclose(r0[key], one[key], rtol=1e-4, atol=1e-7), key
    for key in (k for k in one if k.startswith("param.")):
        assert torch.equal(r0[key], r1[key]), key
        # AdamW's first step moves a weight by about lr·sign(g): compare where the sign is not float noise
        g = one.get("grad." + key[len("param."):])
        sure = g.abs() > 1e-6 if g is not None else torch.ones_like(one[key], dtype=torch.bool)
        assert torch.allclose(r0[key][sure], one[key][sure], rtol=1e-5, atol=1e-6), key


@pytest.mark.slow
def test_mamt_memory_is_bit_identical_on_every_rank(tmp_path):
    torchrun(str(WORKER), "memory", str(tmp_path))
    b0 = load_file(tmp_path / "bank-rank0.safetensors")["bank"]
    b1 = load_file(tmp_path / "bank-rank1.safetensors")["bank"]
    assert b0.shape == (32, 64) and torch.equal(b0, b1)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["replaced"] == r1["replaced"] and sum(r0["replaced"].values()) > 0  # target steps did replace
    assert r0["eval"] == r1["eval"]  # evaluation is sharded, then gathered: the same metrics on both ranks
    run = tmp_path / "run"  # only rank 0 wrote the run folder
    assert json.loads((run / "summary.json").read_text())["world_size"] == 2
    assert json.loads((run / "eval.json").read_text()) == r0["eval"]


@pytest.mark.slow
def test_mtl_run_nproc_launches_torchrun(tmp_path):
    result = run_mtl("run", "--nproc", "2", "--backbone", "tiny", "--max-steps", "6", "--limit", "48",
                     "--eval-limit", "32", "--batch-size", "16", "--max-length", "32", "-o", str(tmp_path / "run"),
                     "--quiet", env={"OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "launching 2 processes" in result.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 6
    assert (tmp_path / "run" / "model" / "config.json").exists()


def test_a_weighting_that_does_not_support_distributed_training_is_refused(tmp_path, monkeypatch, register_plugin):
    from mtl import MtlError, Weighting, hookimpl
    from mtl.runs.config import RunConfig
    from mtl.training import distributed
    from mtl.training.trainer import Trainer

    class Alone(Weighting):
        supports_distributed = False

    class Plugin:
        @hookimpl
        def register_weightings(self, register):
            register("alone-only", Alone, description="test: one process only")

    register_plugin(Plugin())
    monkeypatch.setattr(distributed, "init", lambda: distributed.Context(rank=0, world=2))
    with pytest.raises(MtlError, match="weighting 'alone-only' does not support distributed training"):
        Trainer(RunConfig(target="demo-paraphrase", backbone="tiny", weighting="alone-only",
                          output=str(tmp_path / "run"))).prepare()
    assert not (tmp_path / "run").exists()
