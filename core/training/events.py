"""The run's callbacks and the events the loop sends them (:mod:`mtl.contract.callback`).

Each event keeps the tuple of the callbacks that override it, built once: an event no callback listens to costs
one test of an empty tuple per step, and allocates nothing.
"""

from __future__ import annotations

from typing import Any

from mtl.contract.callback import EVENTS, TrainerControl, TrainerState, overrides


class Events:
    """The callbacks of a run by name, the state they read and the control they set."""

    def __init__(self, callbacks: dict[str, Any]) -> None:
        self.state = TrainerState(step=0, epoch=0, metrics={}, evaluations=0, is_main=True)
        self.control = TrainerControl()
        self._build(callbacks)

    def _build(self, callbacks: dict[str, Any]) -> None:
        self.callbacks = dict(callbacks)
        self._listeners = {event: tuple(cb for cb in self.callbacks.values() if overrides(cb, event))
                           for event in EVENTS}
        self.loss_hooks = tuple(cb for cb in self.callbacks.values() if overrides(cb, "loss"))
        self._step_begin = self._listeners["on_step_begin"]
        self._step_end = self._listeners["on_step_end"]

    def add(self, name: str, callback: Any) -> None:
        """One more callback (before training starts)."""
        self._build({**self.callbacks, name: callback})

    def fire(self, event: str, **kwargs: Any) -> None:
        for callback in self._listeners[event]:
            getattr(callback, event)(self.state, self.control, **kwargs)

    # the per-step events: callers test ``listening_*`` first, so that no keyword arguments are even built when
    # nothing listens
    @property
    def listening_step_begin(self) -> bool:
        return bool(self._step_begin)

    @property
    def listening_step_end(self) -> bool:
        return bool(self._step_end)

    def step_begin(self, **kwargs: Any) -> None:
        for callback in self._step_begin:
            callback.on_step_begin(self.state, self.control, **kwargs)

    def step_end(self, **kwargs: Any) -> None:
        for callback in self._step_end:
            callback.on_step_end(self.state, self.control, **kwargs)

    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for callback in self.callbacks.values():
            out.update(callback.record() if hasattr(callback, "record") else {})
        return out

    def state_dict(self) -> dict[str, Any]:
        return {name: cb.state_dict() for name, cb in self.callbacks.items() if hasattr(cb, "state_dict")}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, cb in self.callbacks.items():
            if name in state and hasattr(cb, "load_state_dict"):
                cb.load_state_dict(state[name])
