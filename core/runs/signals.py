"""Stopping cleanly on SIGTERM and SIGINT: what a run or a bench does when it is told to stop.

:func:`install` makes SIGTERM raise :class:`mtl.errors.Stopped` in the main thread (SIGINT already raises
KeyboardInterrupt), so that the code being stopped unwinds: a file being written is discarded (writes are atomic),
a checkpoint already written stays, a bench stops its child run the same way. :func:`stopping` turns either into
the signal number and ignores further signals while the process winds down, so that a second Ctrl-C cannot
interrupt the clean-up.

The exception can be lost: a signal that arrives while Python runs a finaliser (``__del__``, a weakref or garbage
collector callback) raises there, and Python prints "Exception ignored" and goes on. So the handler also records
the signal, and :func:`check`, which the training loop and the bench's scheduler call between steps, raises it again
until :func:`stopping` has taken it.
"""

from __future__ import annotations

import signal

from mtl.errors import Stopped

_installed = False
_pending: int | None = None  # a SIGTERM whose Stopped has not reached stopping() yet


def _raise_stopped(signum, frame) -> None:
    global _pending
    _pending = signum
    raise Stopped(signum)


def check() -> None:
    """Raise :class:`Stopped` again for a SIGTERM whose exception was swallowed (see the module's docstring)."""
    if _pending is not None:
        raise Stopped(_pending)


def install() -> None:
    """SIGTERM raises :class:`Stopped` (in the main thread only: signal handlers live there). Called by the CLI."""
    global _installed
    try:
        signal.signal(signal.SIGTERM, _raise_stopped)
        _installed = True
    except ValueError:  # not the main thread (e.g. a test runner's worker): leave the default
        pass


def stopping(exc: BaseException) -> int:
    """The signal that ``exc`` (KeyboardInterrupt or Stopped) stands for; in a CLI process (after :func:`install`)
    further SIGINT/SIGTERM are ignored from here on, while it winds down and exits."""
    global _pending
    _pending = None
    for signum in (signal.SIGINT, signal.SIGTERM) if _installed else ():
        try:
            signal.signal(signum, signal.SIG_IGN)
        except ValueError:
            pass
    return exc.signum if isinstance(exc, Stopped) else signal.SIGINT


def name(signum: int) -> str:
    return signal.Signals(signum).name
