"""Run by tests/training/test_distributed.py, under torchrun (2 gloo processes) or alone, to compare the two.

    python ddp_worker.py one-step OUT [BATCH [WEIGHTING SAMPLER]]  # one training step: saves loss, gradients
                                                                   # and parameters per rank
    python ddp_worker.py memory OUT     # a short MAMT run: saves each rank's memory bank
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from safetensors.torch import save_file

from mtl.runs.config import RunConfig
from mtl.training.trainer import Trainer

mode, out = sys.argv[1], Path(sys.argv[2])
rank = int(os.environ.get("RANK", "0"))
tag = f"rank{rank}" if "WORLD_SIZE" in os.environ else "single"
batch = int(sys.argv[3]) if len(sys.argv) > 3 else 16
weighting, sampler = (sys.argv[4], sys.argv[5]) if len(sys.argv) > 5 else ("uniform", "proportional")
common = dict(target="demo-paraphrase", aux=["demo-similarity", "demo-sentiment"], backbone="tiny", batch_size=batch,
              max_length=32, limit=4 * batch, eval_limit=40, seed=11, log_every=1)  # whole batches only

if mode == "one-step":
    # no dropout and no clipping: the gradient is then exactly the global batch's mean-loss gradient
    trainer = Trainer(RunConfig(**common, dropout=0.0, clip=0.0, lr=1e-3, max_steps=1, weighting=weighting,
                                sampler=sampler, output=str(out / f"unused-{tag}"))).prepare()
    trainer.model.eval()  # no dropout anywhere (the backbone's too): ranks draw different dropout masks
    optimizer, scheduler = trainer._optimizer()
    grads = {}
    original = optimizer.step

    def step(*args, **kwargs):
        for name, p in trainer.model.named_parameters():
            if p.grad is not None:
                grads[f"grad.{name}"] = p.grad.detach().clone()
        for i, p in enumerate(trainer.weighting.parameters()):  # a weighting's own (log-variances, task weights)
            if p.grad is not None:
                grads[f"grad.weighting.{i}"] = p.grad.detach().clone()
        return original(*args, **kwargs)

    optimizer.step = step
    names, losses, lr, count = trainer.train_step(0, optimizer, scheduler)
    params = {f"param.{k}": v.detach().clone().contiguous() for k, v in trainer.model.state_dict().items()}
    params |= {f"param.weighting.{i}": p.detach().clone().contiguous()
               for i, p in enumerate(trainer.weighting.parameters())}
    save_file({**grads, **params}, str(out / f"{tag}.safetensors"))
    (out / f"{tag}.json").write_text(json.dumps({"tasks": names, "losses": losses, "examples": count}))
    trainer.ctx.close()
elif mode == "memory":
    trainer = Trainer(RunConfig(**common, weighting="mamt", sampler="adaptive", max_steps=10,
                                options={"mamt": {"memory": 2}}, output=str(out / "run"))).prepare()
    result = trainer.train()
    save_file({"bank": trainer.weighting.bank.contiguous()}, str(out / f"bank-{tag}.safetensors"))
    (out / f"{tag}.json").write_text(json.dumps({"replaced": trainer.weighting.counts, "eval": result["eval"]}))
else:
    raise SystemExit(f"unknown mode {mode!r}")
