"""Running a bench's runs through a launcher: N at once, each after the runs it needs, all stopped together.

:func:`run` takes the runs in the bench's order. A run starts when a slot is free, the runs it needs (a fine-tuning
stage's multi-task run) have ended and no run of the same folder is pending before it or running; with one slot
this is the bench's order exactly. A run that ends is handed to ``ended``, which raises :class:`MtlError` when it
failed: the other running runs are then stopped cleanly and the error is raised. SIGINT or SIGTERM to the bench
stops every running run with the same signal (their checkpoints stay) and raises :class:`Interrupted`, so that no
run is left behind a stopped bench and the same command continues it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mtl.contract.launcher import Launcher, Running
from mtl.errors import Interrupted, MtlError, OptionError, Stopped
from mtl.runs import signals

#: seconds the bench waits for its stopped runs to end before it kills them
STOP_TIMEOUT = 120


@dataclass
class Work:
    """One run to do."""

    key: str  # its run folder: two runs of one folder never run at once, and they keep their order
    name: str  # "uniform seed 0": names it in messages
    needs: tuple[str, ...] = ()  # keys of runs that must have ended first
    data: Any = None  # what ``start`` and ``ended`` need to know about it


@dataclass
class _Active:
    work: Work
    running: Running
    log: str
    started: float = field(default_factory=time.perf_counter)


def run(works: list[Work], launcher: Launcher, start: Callable[[Work, int], tuple[Running, str] | None],
        ended: Callable[[Work, int, float], None], *, jobs: int = 1) -> None:
    """Do ``works`` with at most ``jobs`` at once. ``start(work, slot)`` starts one (returns its :class:`Running`
    and its log file) or returns None when there is nothing to do (finished before); ``ended(work, code, seconds)``
    gets each exit code and raises :class:`MtlError` for a failed run."""
    if jobs < 1:
        raise OptionError(f"--jobs {jobs}: give at least 1 run at once")
    pending = list(works)
    active: dict[int, _Active] = {}
    try:
        while pending or active:
            _dispatch(pending, active, start, jobs)
            if not active:
                if pending:  # cannot happen: needs refer to earlier runs
                    raise MtlError(f"run {pending[0].name} waits for a run that is not in the bench")
                break
            time.sleep(launcher.poll_seconds)
            signals.check()  # a SIGTERM whose exception a finaliser swallowed
            for slot in sorted(active):
                code = active[slot].running.poll()
                if code is not None:
                    done = active.pop(slot)
                    ended(done.work, code, time.perf_counter() - done.started)
    except (KeyboardInterrupt, Stopped) as exc:
        if not active:
            raise
        signum = signals.stopping(exc)
        stopped = list(active.values())
        active.clear()
        _stop(stopped, signum)
        names = " and ".join(a.work.name for a in stopped)
        logs = ", ".join(a.log for a in stopped)
        runs, which, log = ("run", "which was", "log") if len(stopped) == 1 else ("runs", "which were", "logs")
        raise Interrupted(f"bench stopped by {signals.name(signum)} during {runs} {names}, {which} stopped too "
                          f"({log}: {logs}); run the same command again to continue", signum) from None
    except MtlError as exc:
        if not active:
            raise
        stopped = list(active.values())
        active.clear()
        _stop(stopped)
        names = ", ".join(a.work.name for a in stopped)
        error = MtlError(f"{exc}; stopped the other running {'run' if len(stopped) == 1 else 'runs'} ({names}): "
                         "run the same command again to continue")
        error.exit_code = exc.exit_code
        raise error from None
    finally:
        if active:  # any other exception: never leave a run behind
            _stop(list(active.values()))
        launcher.close()


def _dispatch(pending: list[Work], active: dict[int, _Active], start, jobs: int) -> None:
    """Start, in order, every pending run that may start now while slots are free."""
    i = 0
    while i < len(pending) and len(active) < jobs:
        work = pending[i]
        busy = {a.work.key for a in active.values()}
        before = {w.key for w in pending[:i]}
        if work.key in busy | before or any(need in busy | before for need in work.needs):
            i += 1
            continue
        pending.pop(i)
        slot = next(s for s in range(jobs) if s not in active)  # the lowest free slot
        started = start(work, slot)
        if started is not None:
            active[slot] = _Active(work, *started)


def _stop(stopped: list[_Active], signum: int | None = None) -> None:
    """Stop every run (SIGTERM unless ``signum``) and wait for them all, killing those still running after
    :data:`STOP_TIMEOUT` seconds."""
    import signal

    for a in stopped:
        a.running.stop(signum or signal.SIGTERM)
    for timeout, then in ((STOP_TIMEOUT, "kill"), (STOP_TIMEOUT, None)):
        deadline = time.monotonic() + timeout
        while any(a.running.poll() is None for a in stopped) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [a for a in stopped if a.running.poll() is None]
        if not left or then is None:
            return
        for a in left:
            a.running.kill()
