"""The strategy language of `mtl bench --strategy`: ``single``, ``WEIGHTING``, ``WEIGHTING+SAMPLER`` and a fine-tuning
stage ``SPEC>finetune[:REGULARIZER]``, crossed with the ``--weighting × --sampler`` grid; every name is checked
against the plugin registry before anything runs."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from mtl.contract import loader
from mtl.errors import OptionError, UnknownNameError, unknown

SINGLE = "single"
FINETUNE = "finetune"


@dataclass(frozen=True)
class Strategy:
    label: str  # as written: "single", "mamt", "mamt+adaptive", "uniform>finetune:smart"; also the folder name
    weighting: str
    sampler: str
    single: bool = False
    stage: str = ""  # "finetune": each seed's run of the base strategy fine-tuned on the target (mtl finetune)
    stage_regularizer: str | None = None  # the fine-tuning stage's --regularizer

    @property
    def base_label(self) -> str:
        """The multi-task strategy a staged strategy fine-tunes (itself for one without a stage)."""
        return self.label.partition(">")[0]

    def base(self) -> Strategy:
        return Strategy(self.base_label, self.weighting, self.sampler, self.single)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Strategy:
        """A strategy as bench.json stores it (:meth:`to_dict`; checked by
        :func:`mtl.study.bench.folder.record_problem`)."""
        return cls(**record)


ALONE = Strategy(SINGLE, "uniform", "proportional", single=True)  # the target alone: the single-task baseline


def check_name(kind: str, name: str) -> None:
    registry = loader.registry()
    registry.check()
    registry.get(kind, name)  # UnknownNameError with the valid names and the closest ones


def parse_strategies(specs: list[str], weightings: list[str], samplers: list[str], *,
                     base_weighting: str = "uniform", base_sampler: str = "proportional") -> list[Strategy]:
    """The strategies of a bench, in order: each ``--strategy`` SPEC, then the grid ``--weighting × --sampler``.

    SPEC is ``single``, ``WEIGHTING`` (with the run's sampler) or ``WEIGHTING+SAMPLER``. With only
    ``--sampler``, the grid crosses the run's weighting with each sampler. Every name is checked here,
    before anything runs.
    """
    weighting_names = loader.available("weighting")
    out: list[Strategy] = []

    def add(strategy: Strategy) -> None:
        if all(s.label != strategy.label for s in out):
            out.append(strategy)

    for spec in specs:
        spec = spec.strip()
        if ">" in spec:
            add(_staged(spec, base_sampler))
            continue
        if spec == SINGLE:
            add(ALONE)
            continue
        parts = spec.split("+")
        if len(parts) > 2 or not all(p.strip() for p in parts):
            raise UnknownNameError(f"unknown strategy {spec!r}: expected single, WEIGHTING or WEIGHTING+SAMPLER "
                                   f"(e.g. mamt+adaptive)")
        weighting = parts[0].strip()
        if len(parts) == 1 and weighting not in weighting_names:
            try:
                check_name("weighting", weighting)
            except UnknownNameError:
                raise UnknownNameError(unknown("strategy", weighting, [SINGLE, *weighting_names])
                                       + "; or WEIGHTING+SAMPLER") from None
        check_name("weighting", weighting)
        if len(parts) == 2:
            sampler = parts[1].strip()
            check_name("sampler", sampler)
            add(Strategy(f"{weighting}+{sampler}", weighting, sampler))
        else:
            add(Strategy(weighting, weighting, base_sampler))
    for name in weightings:
        check_name("weighting", name)
    for name in samplers:
        check_name("sampler", name)
    if weightings and samplers:
        for w in weightings:
            for s in samplers:
                add(Strategy(f"{w}+{s}", w, s))
    elif weightings:
        for w in weightings:
            add(Strategy(w, w, base_sampler))
    elif samplers:
        for s in samplers:
            add(Strategy(f"{base_weighting}+{s}", base_weighting, s))
    if not out:
        raise OptionError("nothing to compare: give --strategy SPEC, --weighting a,b and/or --sampler x,y")
    return out


def _staged(spec: str, base_sampler: str) -> Strategy:
    """``SPEC>finetune`` or ``SPEC>finetune:REGULARIZER``: SPEC's run of each seed, then `mtl finetune` of it."""
    base_spec, _, stage = (part.strip() for part in spec.partition(">"))
    name, _, regularizer = (part.strip() for part in stage.partition(":"))
    if name != FINETUNE or ">" in stage or (":" in stage and not regularizer):
        raise UnknownNameError(f"unknown strategy {spec!r}: a stage is written SPEC>finetune or "
                               f"SPEC>finetune:REGULARIZER (e.g. siwlm>finetune, uniform>finetune:smart)")
    if base_spec == SINGLE or not base_spec:
        raise OptionError(f"strategy {spec!r}: fine-tuning needs a multi-task strategy before '>' (not single)")
    base = parse_strategies([base_spec], [], [], base_sampler=base_sampler)[0]
    if regularizer:
        check_name("regularizer", regularizer)
    return Strategy(spec.replace(" ", ""), base.weighting, base.sampler, stage=FINETUNE,
                    stage_regularizer=regularizer or None)
