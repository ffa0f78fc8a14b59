"""Files around the spool database: modes, sidecar locks, quarantine.

Owns: the spool directory and file modes (directory 0700 when we create it, every file 0600),
the two ``flock`` sidecars (``<spool>.flusher.lock``: one flusher per spool; ``<spool>.open.lock``:
opens shared vs quarantine exclusive) and moving a corrupt spool aside.

Invariants:

- Files are created 0600 with ``O_EXCL``/``O_NOFOLLOW`` and an explicit ``fchmod`` (umask cannot
  loosen or tighten them); SQLite creates ``-wal``/``-shm`` with the database file's mode.
- Existing files looser than 0600 are repaired (``chmod``) and reported as events; a directory
  writable by group/other without the sticky bit is refused (anyone could swap the files);
  a readable-by-others directory we did not create is reported, not changed (it may be shared).
- ``flock`` locks belong to the open file description: they vanish when the holder dies
  (``kill -9``), are dropped on ``exec`` (``O_CLOEXEC``), and a forked child closes its copy so
  it can neither keep nor release its parent's lock.
- Quarantine renames ``-wal`` and ``-shm`` before the database file, under the exclusive open
  lock, so no process can ever pair a fresh database with the corrupt file's WAL.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from yai_spool.spool.exceptions import SpoolPermissionError

__all__ = [
    "SIDE_FILES",
    "FlusherLock",
    "open_lock",
    "prepare_files",
    "quarantine",
]

# Companion files SQLite keeps next to a WAL database.
SIDE_FILES = ("-wal", "-shm")
_FILE_MODE = 0o600
_DIR_MODE = 0o700


def _create_private(path: Path) -> bool:
    """Create ``path`` 0600 if missing. Returns True if this call created it."""
    try:
        fd = os.open(
            path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, _FILE_MODE
        )
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, _FILE_MODE)
    finally:
        os.close(fd)
    return True


def prepare_files(db: Path) -> list[tuple[str, dict[str, Any]]]:
    """Make sure the directory and database file exist with private modes.

    Returns (kind, detail) events to report. Raises SpoolPermissionError when the directory is
    unsafe or cannot be created, or a file cannot be created/repaired.
    """
    events: list[tuple[str, dict[str, Any]]] = []
    parent = db.parent
    try:
        st = os.stat(parent)
    except FileNotFoundError:
        try:
            os.makedirs(parent, mode=_DIR_MODE, exist_ok=True)
            os.chmod(parent, _DIR_MODE)  # makedirs' mode is filtered by umask
        except OSError as exc:
            raise SpoolPermissionError(f"cannot create spool directory {parent}: {exc}") from exc
    else:
        mode = stat.S_IMODE(st.st_mode)
        if not stat.S_ISDIR(st.st_mode):
            raise SpoolPermissionError(f"spool directory {parent} is not a directory")
        if mode & 0o022 and not mode & stat.S_ISVTX:
            raise SpoolPermissionError(
                f"spool directory {parent} is writable by group/other (mode {mode:04o}) without "
                "the sticky bit: another user could replace the spool; use a 0700 directory"
            )
        if mode & 0o077 and not mode & stat.S_ISVTX:
            events.append(("loose_directory_mode", {"path": str(parent), "mode": f"{mode:04o}"}))
    try:
        _create_private(db)
    except OSError as exc:
        raise SpoolPermissionError(f"cannot create spool file {db}: {exc}") from exc
    for path in (db, *(Path(f"{db}{s}") for s in (*SIDE_FILES, ".ledger"))):
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            try:
                os.chmod(path, mode & 0o700)
            except OSError as exc:
                raise SpoolPermissionError(
                    f"{path} has mode {mode:04o} (readable by others) and cannot be repaired: {exc}"
                ) from exc
            events.append(
                (
                    "permissions_repaired",
                    {"path": str(path), "old": f"{mode:04o}", "new": f"{mode & 0o700:04o}"},
                )
            )
    return events


@contextlib.contextmanager
def open_lock(db: Path, *, exclusive: bool) -> Iterator[None]:
    """Shared while opening, exclusive while quarantining (blocking; held for milliseconds)."""
    path = Path(f"{db}.open.lock")
    _create_private(path)
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing the description releases the flock


def quarantine(db: Path, now: float) -> Path:
    """Move a corrupt spool (and its -wal/-shm) aside to ``<name>.corrupt-<UTC timestamp>``.

    Call with ``open_lock(db, exclusive=True)`` held. Returns the new database path.
    """
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{int(now * 1e6) % 1_000_000:06d}Z"
    target = db.with_name(f"{db.name}.corrupt-{stamp}")
    n = 1
    while target.exists():  # two quarantines in the same microsecond: keep both
        target = db.with_name(f"{db.name}.corrupt-{stamp}-{n}")
        n += 1
    # Side files first: a process opening the path meanwhile must never see the corrupt
    # database's WAL next to a fresh database (SQLite would apply it).
    for suffix in SIDE_FILES:
        with contextlib.suppress(FileNotFoundError):
            os.replace(f"{db}{suffix}", f"{target}{suffix}")
    os.replace(db, target)
    return target


class FlusherLock:
    """Exactly one flusher per spool: ``flock(LOCK_EX | LOCK_NB)`` on ``<spool>.flusher.lock``.

    The holder writes its pid into the file for ``holder_pid()``; the pid alone proves nothing
    (a SIGKILLed holder leaves it behind), so readers trust it only while the lock is held,
    which they test with a non-blocking shared probe.
    """

    def __init__(self, spool_path: str | os.PathLike[str]) -> None:
        self.path = Path(f"{os.fspath(spool_path)}.flusher.lock")
        self._fd: int | None = None
        self._pid = 0

    @property
    def held(self) -> bool:
        """True if this object holds the lock in this process."""
        return self._fd is not None and self._pid == os.getpid()

    def acquire(self) -> bool:
        """Try to become the flusher; never blocks. True if held (now or already)."""
        if self.held:
            return True
        _create_private(self.path)
        fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd, self._pid = fd, os.getpid()
        return True

    def release(self) -> None:
        """Give the lock up (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if self._pid == os.getpid():
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)  # still ours: clear the pid before unlocking
        os.close(fd)

    def forget_after_fork(self) -> None:
        """In a forked child: close the inherited descriptor without touching the lock."""
        if self._fd is not None and self._pid != os.getpid():
            # The child's copy shares the parent's open file description; closing the copy
            # leaves the parent's lock alone, and keeping it would keep the lock alive after
            # the parent dies.
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def holder_pid(self) -> int | None:
        """Pid of the live holder, None if nobody holds the lock.

        0 means held by a process that has not written its pid yet (a few microseconds after
        acquire). The probe takes a shared lock for an instant, so an ``acquire`` racing with it
        may fail once; flushers retry.
        """
        if self.held:
            return os.getpid()
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                raw = os.pread(fd, 32, 0).strip()
                return int(raw) if raw.isdigit() else 0
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def __enter__(self) -> FlusherLock:
        if not self.acquire():
            raise BlockingIOError(f"flusher lock {self.path} is held by pid {self.holder_pid()}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
