"""User-facing errors: the CLI prints them as one line and exits non-zero, never as a traceback; and the
one-line "did you mean" message for an unknown name."""

import difflib
import sys


def warn(message: str) -> None:
    """A one-line warning on stderr: something went wrong that mtl worked around."""
    print(f"mtl: warning: {message}", file=sys.stderr)


class MtlError(Exception):
    """A mistake the user can fix (bad name, option, file or value). The message is one line."""

    exit_code = 1


class UnknownNameError(MtlError):
    """An unknown weighting, sampler, backbone, task or option key."""


class OptionError(MtlError):
    """A plugin option that does not exist or whose value cannot be converted or is out of range."""


class DataError(MtlError):
    """A data file or folder that is missing or malformed; the message names the file (and line)."""


class PluginError(MtlError):
    """A plugin's own code raised (a bug in it, not a user mistake): one line naming the plugin and the exception;
    ``MTL_TRACEBACK=1`` shows where (the exception is the error's ``__cause__``)."""


class TrainingError(MtlError):
    """Training stopped on purpose (a non-finite loss); the run folder and its checkpoints are kept."""


class StorageError(MtlError):
    """The run folder (or an export) could not be written: no space, no permission, a path that is a file. The
    message names the path and what failed; what was written before (the last checkpoint) is intact."""

    exit_code = 74  # EX_IOERR (sysexits.h)


class Stopped(BaseException):
    """Raised in the main thread by mtl's SIGTERM handler (like KeyboardInterrupt for SIGINT), so that a run or a
    bench stops cleanly: nothing half-written, children stopped, exit 143."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class Interrupted(MtlError):
    """A run or bench stopped by SIGINT or SIGTERM; the message says how to continue. Exit 130 or 143 (128 + signal)."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum


def not_utf8(path, exc: UnicodeDecodeError) -> str:
    """One line for a file that is not UTF-8: ``PATH:LINE: not UTF-8 text (byte 0xff)``, the line counted in the
    bytes the decoder was given."""
    line = exc.object[:exc.start].count(b"\n") + 1
    return f"{path}:{line}: not UTF-8 text (byte {exc.object[exc.start]:#04x})"


def unknown(what: str, name: str, valid) -> str:
    """One line: the unknown name, the closest valid names, and all valid names."""
    valid = sorted(valid)
    close = difflib.get_close_matches(name, valid, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    listing = ", ".join(valid) if valid else "(none)"
    return f"unknown {what} {name!r}.{hint} Valid: {listing}"
