"""`mtl bench --seeds`: the seeds every strategy runs."""

from __future__ import annotations

from mtl.errors import OptionError


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]`` (distinct, in the given order)."""
    seeds: list[int] = []
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        try:
            seed = int(part)
        except ValueError:
            raise OptionError(f"--seeds {text!r}: expected integers separated by commas, e.g. --seeds 0,1,2") from None
        if seed < 0:
            raise OptionError(f"--seeds {text!r}: seeds must be >= 0 (got {seed})")
        if seed not in seeds:
            seeds.append(seed)
    if not seeds:
        raise OptionError("--seeds: give at least one seed, e.g. --seeds 0,1,2")
    return seeds
