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
