"""The built-in demo suite: its tasks and the run options its quick start is sized for.

`mtl run`, `mtl bench` and `mtl affinity` without task options train :data:`DEMO_SUITE`; options the user
gave (command line or config file) always win over :data:`DEMO_DEFAULTS`.
"""

from __future__ import annotations

from typing import Any

# core/data/demo/, made by tools/make_demo.py: a target task and its auxiliaries
DEMO_SUITE = {"target": "demo-paraphrase", "aux": ["demo-similarity", "demo-sentiment"]}

# sized so that `mtl run --weighting mamt --sampler adaptive` learns the demo in under a minute on two CPU cores
# with minilm: 2 epochs of 80 small batches (core/data/demo/README.md says what they reach and why)
DEMO_DEFAULTS: dict[str, Any] = {"epochs": 2, "batch_size": 8, "lr": 1e-4}


def use_demo(values: dict[str, Any]) -> bool:
    """Fill ``values`` (run options by RunConfig field, only those given) with the demo suite and its defaults
    when it names no task; True when it did."""
    if values.get("target") or values.get("aux"):
        return False
    values["target"], values["aux"] = DEMO_SUITE["target"], list(DEMO_SUITE["aux"])
    for key, value in DEMO_DEFAULTS.items():
        if values.get(key) is None:
            values[key] = value
    return True
