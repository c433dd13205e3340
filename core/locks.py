"""One writer per folder: a lock file beside the folder names who writes it, since when, and shows they are alive.

Every command that writes a folder (``mtl run`` and ``--resume``, ``mtl finetune``, ``mtl affinity``, ``mtl bench``,
``mtl export``, ``mtl plot --overwrite``, a cache shared by runs) holds a :class:`FolderLock` on it while it writes.
A second writer is refused before it changes anything (:class:`FolderInUse`, one line naming the folder, the
holder's command, process id and host, and since when); a lock whose holder is gone is taken over with a one-line
notice. Readers take no lock: folders are replaced by renaming (never half-deleted), files are written atomically.

The lock of ``DIR/name`` is the file ``DIR/.name.mtl-lock``, outside the folder, so that replacing the folder
(``--overwrite``) cannot remove it. It is made complete in a temporary file and put in place with ``link(2)``, which
fails when the name exists: atomic on local file systems and on NFS (the classic NFS-safe recipe; ``open`` with
``O_EXCL`` is the fallback where hard links are not supported). It holds JSON: host, process id, the process's start
time and the machine's boot id, a random token, the command, since when. While it is held a thread touches it every
:data:`HEARTBEAT` seconds.

Whether the holder is alive:

- **on this host** (same host name): its process runs, is the same process (its start time in ``/proc`` matches,
  so a reused process id does not count) and the machine has not rebooted since (boot id). A process killed with
  ``-9`` is seen as gone at once; a stopped or busy one still holds its lock.
- **on another host** (a SLURM job on a shared file system): no process can be asked, so the heartbeat decides: the
  lock is stale when its file was last touched more than ``MTL_LOCK_STALE_SECONDS`` ago (default
  :data:`STALE_SECONDS`, above NFS's attribute caching of up to 60 s and modest clock skew).

``flock``/``fcntl`` locks alone are not used: on NFS they depend on the lock daemon (lost when a server restarts,
unsupported on some mounts), and they cannot say who holds a folder or since when.

A process passes the tokens of its locks to its children in ``MTL_LOCKS``: a bench's runs write inside the bench's
folder while anyone else is refused there. Under torchrun rank 0 holds the run folder's lock; a folder every rank
needs (a cache) is made by :func:`build_once`, by the first rank while the others wait.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtl.errors import MtlError, warn

SUFFIX = ".mtl-lock"
ENV = "MTL_LOCKS"  # the tokens of the locks this process's parents hold, comma-separated
STALE_ENV = "MTL_LOCK_STALE_SECONDS"
HEARTBEAT = 10.0  # seconds between two touches of a held lock file
STALE_SECONDS = 300.0  # a lock of another host untouched this long is stale
POLL = 0.2  # seconds between two looks at a lock being waited for

_held: dict[str, FolderLock] = {}  # this process's locks, by token


class FolderInUse(MtlError):
    """Another live process writes the folder (or a folder that contains it)."""


def lock_path(folder: str | Path) -> Path:
    """``DIR/.name.mtl-lock``: the lock file of folder ``DIR/name`` (absolute, symbolic links resolved)."""
    folder = Path(folder).resolve()
    return folder.parent / f".{folder.name}{SUFFIX}"


def stale_after() -> float:
    value = os.environ.get(STALE_ENV)
    try:
        return float(value) if value else STALE_SECONDS
    except ValueError:
        raise MtlError(f"{STALE_ENV}={value!r}: give a number of seconds") from None


# ------------------------------------------------------------------------------------------------ this process
def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _start_time(pid: int) -> int | None:
    """The start time of process ``pid`` in clock ticks after boot (``/proc/PID/stat`` field 22); None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2:].split()[19])


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _inherited() -> set[str]:
    return {token for token in os.environ.get(ENV, "").split(",") if token}


def _ours(token: str) -> bool:
    """A lock this process or one of its parents holds."""
    return token in _held or token in _inherited()


# ------------------------------------------------------------------------------------------------ a holder
@dataclass(frozen=True)
class Holder:
    """What a lock file says about its holder, and when it was last touched (``heartbeat``, seconds since epoch)."""

    host: str
    pid: int
    token: str
    command: str
    since: str
    heartbeat: float
    start: int | None = None
    boot: str | None = None

    def describe(self) -> str:
        return f"{self.command} (process {self.pid} on {self.host}) has been writing it since {self.since}"

    def gone(self) -> str | None:
        """Why the holder is gone (one phrase), or None while it may still write."""
        if self.host == socket.gethostname():
            boot = _boot_id()
            if self.boot and boot and self.boot != boot:
                return "the machine has restarted since"
            if not _running(self.pid):
                return "its process is no longer running"
            start = _start_time(self.pid)
            if self.start is not None and start is not None and start != self.start:
                return "its process is no longer running (the id is now another process's)"
            return None
        age = time.time() - self.heartbeat
        limit = stale_after()
        if age > limit:
            return f"its heartbeat stopped {age:.0f} s ago (> {limit:.0f} s, {STALE_ENV})"
        return None


def read_holder(lock: Path) -> Holder | None:
    """The holder a lock file names; None when there is no lock file. A file that does not parse (damaged, or
    written by hand) names an unknown holder whose heartbeat is the file's modification time."""
    try:
        with open(lock, encoding="utf-8") as f:
            heartbeat = os.fstat(f.fileno()).st_mtime  # after open: NFS revalidates the attributes
            text = f.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise MtlError(f"{lock}: cannot read the lock file: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
        return Holder(host=str(data["host"]), pid=int(data["pid"]), token=str(data["token"]),
                      command=str(data.get("command", "mtl")), since=str(data.get("since", "?")),
                      heartbeat=heartbeat, start=data.get("start"), boot=data.get("boot"))
    except (ValueError, KeyError, TypeError):
        return Holder(host="an unknown host", pid=0, token="", command="an unknown process", since="?",
                      heartbeat=heartbeat)


def holder(folder: str | Path) -> Holder | None:
    """The live holder of ``folder``'s lock that is not this process or one of its parents; None when free."""
    found = read_holder(lock_path(folder))
    if found is None or _ours(found.token) or found.gone():
        return None
    return found


def check_free(folder: str | Path, flag: str = "--output") -> None:
    """A one-line :class:`FolderInUse` when another live process writes ``folder`` or a folder above it."""
    folder = Path(folder).resolve()
    for place in (folder, *folder.parents):
        found = holder(place)
        if found is None:
            continue
        if place == folder:
            raise FolderInUse(f"{flag} {folder} is in use: {found.describe()}; wait for it to end or choose another "
                              "folder")
        raise FolderInUse(f"{flag} {folder} is inside {place}, which is in use: {found.describe()}; wait for it to "
                          "end or choose another folder")


def live_inside(folder: str | Path) -> list[tuple[Path, Holder]]:
    """The folders under ``folder`` that another live process writes (their lock files are inside it)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for lock in folder.rglob(f".*{SUFFIX}"):
        who = read_holder(lock)
        if who is not None and not _ours(who.token) and who.gone() is None:
            found.append((lock.with_name(lock.name[1:-len(SUFFIX)]), who))
    return found


# ------------------------------------------------------------------------------------------------ the lock
class FolderLock:
    """The lock of one folder, held by this process; a context manager.

    ``FolderLock(path, "mtl run").acquire()`` raises :class:`FolderInUse` when another live process writes the
    folder or a folder above it, takes a stale lock over (one line on stderr), and else holds the lock until
    :meth:`release`. A folder that this process or one of its parents already holds is not locked again.
    """

    def __init__(self, folder: str | Path, command: str, *, flag: str = "--output") -> None:
        self.folder = Path(folder)
        self.command = command
        self.flag = flag
        self.token = secrets.token_hex(8)
        self.lock = lock_path(folder)
        self.held = False
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"FolderLock({str(self.folder)!r}, held={self.held})"

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def acquire(self, *, wait: float | None = None) -> FolderLock:
        """Hold the lock; with ``wait`` (seconds, ``float('inf')`` for no limit) wait for a live holder to end
        instead of refusing."""
        deadline = None if wait is None else time.monotonic() + wait
        try:
            self.lock.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise MtlError(f"{self.flag} {self.folder}: cannot create its parent folder: {exc.strerror or exc}") \
                from None
        while True:
            try:
                self._check_above()
                if self._try_create():
                    return self
                found = read_holder(self.lock)
                if found is None:
                    continue  # released meanwhile
                if _ours(found.token):
                    return self  # held by this process or a parent: written under that lock
                why = found.gone()
                if why is not None:
                    self._take_over(found, why)
                    continue
                raise FolderInUse(f"{self.flag} {self.folder.resolve()} is in use: {found.describe()}; wait for it "
                                  "to end or choose another folder")
            except FolderInUse:
                if deadline is None or time.monotonic() > deadline:
                    raise
                time.sleep(POLL)

    def _check_above(self) -> None:
        parents = self.folder.resolve().parents
        for place in parents:
            found = holder(place)
            if found is not None:
                raise FolderInUse(f"{self.flag} {self.folder.resolve()} is inside {place}, which is in use: "
                                  f"{found.describe()}; wait for it to end or choose another folder")

    def _record(self) -> bytes:
        pid = os.getpid()
        return json.dumps({
            "host": socket.gethostname(), "pid": pid, "start": _start_time(pid), "boot": _boot_id(),
            "token": self.token, "command": self.command, "argv": sys.argv,
            "since": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        }).encode("utf-8")

    def _try_create(self) -> bool:
        """Put a complete lock file in place unless one exists; True when this process now holds it."""
        tmp = self.lock.with_name(f"{self.lock.name}.{self.token}.tmp")
        try:
            tmp.write_bytes(self._record())
            try:
                os.link(tmp, self.lock)
            except FileExistsError:
                return False
            except OSError:  # no hard links here (some network or FUSE file systems): O_EXCL
                try:
                    fd = os.open(self.lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                except FileExistsError:
                    return False
                with os.fdopen(fd, "wb") as f:
                    f.write(self._record())
        except OSError as exc:
            raise MtlError(f"{self.flag} {self.folder}: cannot write the lock file {self.lock}: "
                           f"{exc.strerror or exc}") from None
        finally:
            tmp.unlink(missing_ok=True)
        self._hold()
        return True

    def _hold(self) -> None:
        self.held = True
        _held[self.token] = self
        os.environ[ENV] = ",".join(sorted(_inherited() | {self.token}))
        self._stop.clear()
        self._beat = threading.Thread(target=self._heartbeat, name=f"mtl-lock {self.folder}", daemon=True)
        self._beat.start()

    def _take_over(self, stale: Holder, why: str) -> None:
        """Move the stale lock aside (only one process can), check it is the one judged stale, drop it."""
        aside = self.lock.with_name(f"{self.lock.name}.{self.token}.stale")
        try:
            os.rename(self.lock, aside)
        except FileNotFoundError:
            return  # another process took it over first
        moved = read_holder(aside)
        if moved is not None and moved.token != stale.token:  # a fresh lock was put in place meanwhile: restore it
            try:
                os.link(aside, self.lock)
            except OSError:
                pass
            aside.unlink(missing_ok=True)
            return
        aside.unlink(missing_ok=True)
        warn(f"{self.folder}: taking over the lock left by {stale.command} (process {stale.pid} on {stale.host}, "
             f"since {stale.since}): {why}")

    def _heartbeat(self) -> None:
        lost = False
        while not self._stop.wait(HEARTBEAT):
            try:
                if not self._still_mine():
                    raise FileNotFoundError
                os.utime(self.lock)
            except (OSError, MtlError):
                if not lost:
                    warn(f"{self.folder}: the lock file {self.lock} was removed or replaced by another process")
                lost = True

    def release(self) -> None:
        """Stop the heartbeat and remove the lock file (if it is still this process's)."""
        if not self.held:
            return
        self.held = False
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        _held.pop(self.token, None)
        os.environ[ENV] = ",".join(sorted(_inherited() - {self.token}))
        try:
            if self._still_mine():
                self.lock.unlink()
        except (OSError, MtlError):
            pass

    def _still_mine(self) -> bool:
        found = read_holder(self.lock)
        return found is not None and found.token == self.token


# ------------------------------------------------------------------------------------------------ a shared folder
def build_once(folder: str | Path, build: Callable[[Path], None], *, what: str = "cache",
               wait: float = float("inf")) -> bool:
    """Make ``folder`` exactly once among every process that asks for it (the runs of a bench, torchrun's ranks):
    the first to lock it calls ``build(tmp)`` on an empty temporary sibling, which is then renamed into place; the
    others wait for it and find it built. True when this process built it."""
    folder = Path(folder)
    if folder.exists():
        return False
    with FolderLock(folder, what, flag=what).acquire(wait=wait):
        if folder.exists():
            return False
        tmp = folder.with_name(f".{folder.name}.{secrets.token_hex(4)}.tmp")
        try:
            tmp.mkdir(parents=True)
            build(tmp)
            os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return True
