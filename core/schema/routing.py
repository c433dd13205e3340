"""``--set NAME.KEY=VALUE`` routed to the plugins of a run: NAME is a kind, a plugin, a task or a tracker."""

from __future__ import annotations

from typing import Any

from mtl.errors import OptionError


def plugin_options(options: dict[str, dict[str, Any]], kinds: dict[str, str], tasks: list[str],
                   trackers: list[str], callbacks: list[str] = ()) -> dict[tuple[str, str], dict[str, Any]]:
    """Route ``options`` (NAME -> {key: value}) to the plugins of a run: ``(kind, name) -> {key: value}``.

    ``kinds`` maps each kind to the selected name (weighting, sampler, backbone, regularizer); a NAME may be a
    kind (``weighting``), a plugin name (``mamt``, or ``hf`` for ``hf:bert``), a task, a tracker or a callback of the
    run.
    """
    routed: dict[tuple[str, str], dict[str, Any]] = {}
    for key, values in options.items():
        matches = []
        if key in kinds:
            matches.append((key, kinds[key]))
        for kind, name in kinds.items():
            if key == name or key == name.partition(":")[0]:
                matches.append((kind, name))
        if key in tasks:
            matches.append(("task", key))
        if key in trackers:  # a tracker's options: --set wandb.project=NAME
            matches.append(("tracker", key))
        if key in callbacks:  # a callback's options: --set NAME.KEY=VALUE with --callback NAME
            matches.append(("callback", key))
        matches = list(dict.fromkeys(matches))
        if not matches:
            used = ([f"{kind} {name!r}" for kind, name in kinds.items()] + [f"task {t!r}" for t in tasks]
                    + [f"tracker {t!r}" for t in trackers] + [f"callback {c!r}" for c in callbacks])
            raise OptionError(
                f"options for {key!r}: not a plugin of this run ("
                + ", ".join(used) + "); use a plugin name, a task name or weighting/sampler/backbone"
            )
        if len(matches) > 1:
            kinds_hit = " and ".join(f"the {kind}" for kind, _ in matches)
            raise OptionError(
                f"options for {key!r}: {key!r} is {kinds_hit}; write "
                + " or ".join(f"{kind}.KEY" for kind, _ in matches)
            )
        routed.setdefault(matches[0], {}).update(values)
    return routed
