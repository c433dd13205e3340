"""The documentation keeps up with the code (as datasette's test_docs): every hook and every built-in
weighting and sampler is described in the README."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import mtl
from mtl.contract import hookspecs, loader

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("hook", [n for n, f in inspect.getmembers(hookspecs, inspect.isfunction)
                                  if n.startswith("register_")])
def test_every_hook_is_documented(hook):
    assert f"`{hook}`" in README


@pytest.mark.parametrize("kind", ["weighting", "sampler"])
def test_every_builtin_strategy_is_documented(kind):
    builtin = [n for n in mtl.available(kind) if loader.registry().get(kind, n)[0].package == "mtl"]
    assert builtin
    for name in builtin:
        assert f"**`{name}`**" in README, f"{kind} {name!r} is not described in README.md"


def test_the_readme_gradient_method_example_works(register_plugin, tmp_path):
    """README "A gradient method or a loss weighting": the example plugin, run as written, on a constructed Jacobian
    and through a training step."""
    import re

    import torch

    block = next(b for b in re.findall(r"```python\n(.*?)```", README, re.S) if "class NormalisedSum" in b)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    weighting = namespace["NormalisedSum"]()
    jacobian = torch.tensor([[3.0, 4.0], [0.0, -2.0]])
    step = mtl.Step(losses={}, features={}, target=None, index=0, epoch=0, progress=0.0)
    direction = weighting.aggregate(jacobian, ["a", "b"], step)
    assert torch.allclose(direction, torch.tensor([0.6, 0.8 - 1.0]))  # (3,4)/5 + (0,-2)/2
    assert step.weights == pytest.approx({"a": 0.2, "b": 0.5})

    class Plugin:
        register_weightings = staticmethod(namespace["register_weightings"])

    register_plugin(Plugin())
    from conftest import invoke_cli

    result = invoke_cli("run", "--weighting", "normalised-sum", "--sampler", "all", "--backbone", "tiny",
                        "--max-steps", "2", "--batch-size", "8", "--max-length", "32", "--limit", "16",
                        "--eval-limit", "8", "-q", "-o", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    assert "weight.demo-sentiment" in (tmp_path / "run" / "metrics.jsonl").read_text()
