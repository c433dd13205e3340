"""I/O faults while writing a run folder or an export, as one-line errors.

A write that fails — no space left, no permission, a read-only file system, a path component that is a file —
becomes a :class:`mtl.errors.StorageError` naming the path and what failed (for no space: how much the write needed
and how much is free). Writers check the free space before a large write (a checkpoint, a best model, an export)
so that a full disk is found before anything is half-written; :func:`write_bytes` is the one place bytes reach a
file (tests inject faults there).
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import BinaryIO

from mtl.errors import StorageError

#: free space kept beyond the file itself (file-system metadata, the checkpoint list, the rename)
MARGIN = 1 << 20
_NO_SPACE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def size(n: int) -> str:
    """Bytes as a short human number: 930 B, 12.4 MB, 3.1 GB."""
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def free_space(path: Path) -> int | None:
    """Free bytes on the file system of ``path`` (or its nearest existing parent); None where it cannot be told."""
    path = Path(path).absolute()
    for candidate in (path, *path.parents):
        if candidate.exists():
            try:
                return shutil.disk_usage(candidate).free
            except OSError:
                return None
    return None


def check_free(path: Path, needed: int) -> None:
    """Raise the no-space error for writing ``needed`` bytes at ``path`` when the file system has less free."""
    free = free_space(path.parent)
    if free is not None and needed + MARGIN > free:
        raise StorageError(f"cannot write {path}: not enough space on the device (the write needs {size(needed)}, "
                           f"{size(free)} free)")


def error(path: Path, exc: OSError, needed: int | None = None) -> StorageError:
    """The one-line error for ``exc`` raised while writing ``path``."""
    if exc.errno in _NO_SPACE:
        free = free_space(Path(path).parent)
        needs = f"the write needs {size(needed)}, " if needed is not None else ""
        where = f"{needs}{size(free)} free" if free is not None else needs.rstrip(", ")
        return StorageError(f"cannot write {path}: no space left on the device ({where})")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return StorageError(f"cannot write {path}: permission denied")
    if exc.errno == errno.EROFS:
        return StorageError(f"cannot write {path}: the file system is read-only")
    if exc.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
        return StorageError(f"cannot write {path}: {exc.strerror.lower() if exc.strerror else exc} "
                            f"(a file stands where a folder is needed, or a folder where a file is)")
    return StorageError(f"cannot write {path}: {exc.strerror or exc}")


def write_bytes(file: BinaryIO, data: bytes) -> None:
    """Write all of ``data`` to an open binary file (the one place file contents are written). An unbuffered file
    may take part of it without an error (a short write, as when the disk fills): the rest is written again until
    the system raises (ENOSPC) or takes it all."""
    view = memoryview(data)
    while view:
        written = file.write(view)
        if written is None:  # only a non-blocking raw file returns None; mtl opens none
            written = len(view)
        if written == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


def append_line(path: Path, line: str) -> None:
    """Append one text line to ``path``; on a fault the file is cut back to its size before, and the error raised."""
    data = (line + "\n").encode("utf-8")
    try:
        before = path.stat().st_size if path.exists() else 0
        with open(path, "ab", buffering=0) as f:
            try:
                write_bytes(f, data)
            except OSError:
                os.truncate(path, before)  # no half line left behind
                raise
    except OSError as exc:
        raise error(path, exc, len(data)) from None


def remove_quietly(path: str | os.PathLike) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
