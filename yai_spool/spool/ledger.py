"""The ledger: ``<spool>.ledger``, a small fixed-size side file that works on a full disk.

Owns two facts ``yai-spool status`` must see even when the SQLite file cannot be written or
its WAL was damaged:

- **Drops not in the database yet.** A process that cannot write the spool (disk full,
  read-only, permission) counts its drops in memory; its slot here says how many, why, and
  when the last one happened, so status in another process shows them within a
  housekeeping tick (``housekeeper.TICK``), and they survive a ``kill -9`` of that process
  (the next process to claim the slot folds them into the database).
- **The appended high-water mark.** How many records the spool had accepted, as seen by a
  committed read at the last housekeeping tick. A spool that later opens with fewer appended
  records lost committed records (a damaged WAL, a power loss with ``synchronous=NORMAL``):
  the mark says how many. It lives outside SQLite on purpose: a mark stored in the database
  would be lost together with the records it should count.

Layout: ``SLOTS`` slots of ``SLOT_BYTES`` bytes. Each slot is one JSON object padded with
spaces and ending in a newline (``cat`` shows it). Slot 0 is the mark
(``{"created_at", "appended", "at"}``), slots 1.. belong to one ``Spool`` instance each
(``{"pid", "owner", "hb", "pending": {reason: n}, "last_drop"}``); a blank slot is free.

Invariants:

- The file is created 0600 (``O_EXCL``/``O_NOFOLLOW``) at its full size with every byte
  written, when the spool is opened; later writes overwrite whole slots in place
  (``pwrite``), so they allocate nothing: they work on a full disk on ext4, xfs and tmpfs
  (not on copy-on-write filesystems such as btrfs or ZFS, where an overwrite needs space).
- A slot is claimed, and the mark raised, under ``flock(LOCK_EX)`` of the ledger; a
  process writes only its own slot otherwise. The mark only ever grows (max under the
  lock) and is keyed by the database's ``created_at``, so a replaced or quarantined file
  never inherits a stale mark.
- Pending drops are in a slot only while they are not in the database: the owner writes its
  slot without them *before* committing them to the database, so a reader may miss them for
  an instant, never count them twice. A dead owner's slot is reclaimed only when its
  heartbeat is older than ``STALE`` *and* its pid does not exist (a live process in
  another pid namespace keeps a fresh heartbeat); its pending drops are then handed to the
  claimer to persist (lost, not doubled, if the claimer dies in between).
- Nothing here raises into the spool: a missing, unreadable or malformed ledger reads as
  empty, and writes that fail are retried at the next tick.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

__all__ = ["SLOTS", "SLOT_BYTES", "Ledger", "LedgerView", "Mark", "Slot", "ledger_path", "read"]

SLOTS: Final = 64
SLOT_BYTES: Final = 256
#: A slot whose heartbeat is older than this (and whose pid is gone) may be reclaimed.
STALE: Final = 30.0
_SIZE: Final = SLOTS * SLOT_BYTES
_BLANK: Final = b" " * (SLOT_BYTES - 1) + b"\n"


def ledger_path(db: Path) -> Path:
    """``<spool>.ledger`` next to the database file."""
    return Path(f"{db}.ledger")


@dataclass(frozen=True, slots=True)
class Mark:
    """The appended high-water mark of the database created at ``created_at``."""

    created_at: float
    appended: int
    at: float


@dataclass(frozen=True, slots=True)
class Slot:
    """One spool instance's drops that are not in the database yet."""

    index: int
    pid: int
    owner: str
    heartbeat: float
    pending: Mapping[str, int] = field(default_factory=dict)
    last_drop: float | None = None


@dataclass(frozen=True, slots=True)
class LedgerView:
    """Everything in a ledger (empty when there is none)."""

    mark: Mark | None = None
    slots: tuple[Slot, ...] = ()

    def pending_except(self, owner: str | None) -> dict[str, int]:
        """Pending drops of every slot but ``owner``'s (that one is counted in memory)."""
        out: dict[str, int] = {}
        for slot in self.slots:
            if slot.owner == owner:
                continue
            for reason, n in slot.pending.items():
                out[reason] = out.get(reason, 0) + n
        return out

    def last_drop_except(self, owner: str | None) -> float | None:
        times = [s.last_drop for s in self.slots if s.owner != owner and s.last_drop]
        return max(times) if times else None


def _encode(obj: Mapping[str, Any]) -> bytes:
    data = json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()
    if len(data) > SLOT_BYTES - 1:
        raise ValueError("ledger slot overflow")
    return data + b" " * (SLOT_BYTES - 1 - len(data)) + b"\n"


def _decode(raw: bytes) -> dict[str, Any] | None:
    text = raw.strip()
    if not text:
        return None
    try:
        obj = json.loads(text)
    except ValueError:
        return None  # a torn or damaged slot reads as unknown, never as an error
    return obj if isinstance(obj, dict) else None


def _parse(data: bytes) -> LedgerView:
    mark = None
    slots = []
    for index in range(min(SLOTS, len(data) // SLOT_BYTES)):
        obj = _decode(data[index * SLOT_BYTES : (index + 1) * SLOT_BYTES])
        if obj is None:
            continue
        try:
            if index == 0:
                mark = Mark(float(obj["created_at"]), int(obj["appended"]), float(obj["at"]))
                continue
            pending = {str(k): int(v) for k, v in dict(obj.get("pending") or {}).items() if v}
            last = obj.get("last_drop")
            slots.append(
                Slot(
                    index,
                    int(obj["pid"]),
                    str(obj["owner"]),
                    float(obj["hb"]),
                    pending,
                    None if last is None else float(last),
                )
            )
        except (KeyError, TypeError, ValueError):
            continue
    return LedgerView(mark, tuple(slots))


def read(db: Path) -> LedgerView:
    """The ledger of the spool ``db`` (read-only, no lock; empty if there is none)."""
    try:
        fd = os.open(ledger_path(db), os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return LedgerView()
    try:
        return _parse(os.pread(fd, _SIZE, 0))
    except OSError:
        return LedgerView()
    finally:
        os.close(fd)


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # EPERM: it exists, as another user
    return True


class Ledger:
    """This ``Spool`` instance's handle on the ledger: its slot and the mark.

    Not thread-safe by itself; the spool calls it from its housekeeper thread and under its
    own lock.
    """

    def __init__(self, db: Path, owner: str) -> None:
        self.path = ledger_path(db)
        self.owner = owner
        self.slot: int | None = None
        self._fd: int | None = None
        self._written: bytes = b""

    # -- file ----------------------------------------------------------------------------

    @staticmethod
    def create(db: Path) -> None:
        """Create the file at full size if it is missing (at spool open, while there is space).

        Raises OSError (the caller ignores it: no ledger means drops stay in memory only).
        """
        path = ledger_path(db)
        try:
            fd = os.open(
                path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
            )
        except FileExistsError:
            return
        try:
            os.fchmod(fd, 0o600)
            # Every byte written now, so that later in-place writes need no new blocks.
            os.write(fd, _BLANK * SLOTS)
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(path)  # a short ledger would make later writes allocate
            raise
        os.close(fd)

    def _open(self) -> int | None:
        if self._fd is None:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
            except OSError:
                return None
            if os.fstat(fd).st_size < _SIZE:
                os.close(fd)  # not ours, or cut short: never extend it (that allocates)
                return None
            self._fd = fd
        return self._fd

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def forget_after_fork(self) -> None:
        """In a forked child: the parent's slot and descriptor are not ours."""
        self._fd = None  # the inherited descriptor is left to the parent (closed at exec)
        self.slot = None
        self._written = b""

    @contextlib.contextmanager
    def _locked(self, fd: int) -> Iterator[None]:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    # -- slots ---------------------------------------------------------------------------

    def claim(self, now: float) -> dict[str, int]:
        """Take a slot for this instance; returns the pending drops of dead owners it
        reclaimed (the caller persists them). No-op once claimed or without a ledger."""
        if self.slot is not None:
            return {}
        fd = self._open()
        if fd is None:
            return {}
        inherited: dict[str, int] = {}
        try:
            with self._locked(fd):
                view = _parse(os.pread(fd, _SIZE, 0))
                used = {s.index: s for s in view.slots}
                free = [i for i in range(1, SLOTS) if i not in used]
                for slot in view.slots:
                    if slot.owner == self.owner:
                        self.slot = slot.index
                        return {}
                    if now - slot.heartbeat > STALE and not _pid_exists(slot.pid):
                        for reason, n in slot.pending.items():
                            inherited[reason] = inherited.get(reason, 0) + n
                        os.pwrite(fd, _BLANK, slot.index * SLOT_BYTES)
                        free.append(slot.index)
                if not free:
                    return inherited  # more than SLOTS - 1 live writers: drops stay in memory
                self.slot = min(free)
                self._write_slot(fd, {}, None, now)
        except OSError:
            return inherited
        return inherited

    def _write_slot(
        self, fd: int, pending: Mapping[str, int], last_drop: float | None, now: float
    ) -> None:
        assert self.slot is not None
        data = _encode(
            {
                "pid": os.getpid(),
                "owner": self.owner,
                "hb": round(now, 3),
                "pending": {k: v for k, v in pending.items() if v},
                "last_drop": last_drop,
            }
        )
        os.pwrite(fd, data, self.slot * SLOT_BYTES)
        self._written = data

    def publish(self, pending: Mapping[str, int], last_drop: float | None, now: float) -> bool:
        """Write this instance's slot (pending drops, last drop time, heartbeat)."""
        fd = self._open()
        if fd is None or self.slot is None:
            return False
        try:
            self._write_slot(fd, pending, last_drop, now)
        except (OSError, ValueError):
            return False
        return True

    def release(self) -> None:
        """Free this instance's slot (at close, once its drops are in the database)."""
        fd = self._open()
        if fd is not None and self.slot is not None:
            with contextlib.suppress(OSError):
                os.pwrite(fd, _BLANK, self.slot * SLOT_BYTES)
        self.slot = None
        self.close()

    # -- the mark ------------------------------------------------------------------------

    def raise_mark(
        self, created_at: float, appended: int, now: float, *, reset: bool = False
    ) -> None:
        """Raise the mark to ``appended`` (never lowers it; resets it for another file).

        ``reset``: set it to ``appended`` even if lower (once a loss has been reported).
        """
        fd = self._open()
        if fd is None:
            return
        try:
            with self._locked(fd):
                current = _parse(os.pread(fd, SLOT_BYTES, 0)).mark
                if (
                    not reset
                    and current is not None
                    and current.created_at == created_at
                    and current.appended >= appended
                ):
                    return
                os.pwrite(
                    fd,
                    _encode({"created_at": created_at, "appended": appended, "at": round(now, 3)}),
                    0,
                )
        except (OSError, ValueError):
            return
