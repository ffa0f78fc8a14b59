"""What a damaged ``-wal`` file lost: the evidence SQLite's recovery throws away, kept.

When the first connection opens a WAL database after a crash, SQLite rebuilds its index by
reading the WAL from the start and stops at the first frame whose checksum fails: every
transaction after that frame is ignored, silently, and the database opens as if they never
happened (a garbled WAL lost 3,055 of 3,055 committed records that way, with ``status``
saying ``ok``). This module looks at the file *before* SQLite does and compares afterwards.

Owns: reading the WAL header and frame headers (never page data: 24 bytes per frame) and
judging them against the number of frames SQLite accepted.

The judgement (``judge``): the frames that carry the current WAL's salts and a commit marker
are this WAL's transactions. SQLite writes a frame's header and its page in two ``write``
calls, so a process killed between them leaves the *last* transaction with a commit marker
and a stale page: SQLite rightly skips it (that append never returned). Nothing can be
written after such a torn transaction in the same WAL generation (the next writer starts
over from the last transaction SQLite accepted), so two or more skipped transactions, or a
damaged WAL header (written in one call, it cannot be torn), mean damage: whatever those
transactions wrote is gone or, worse, older page versions were recovered over newer ones.

Invariants:

- Read-only and lock-free: the ``-wal`` file is read with plain ``pread`` (SQLite keeps no
  POSIX locks on it, so opening and closing it cannot drop SQLite's locks); the database
  file and ``-shm`` are never touched here.
- Never a false alarm from a live WAL: frames appended while we read are at the tail (they
  only raise what SQLite accepts); a restart by another process changes the header salts,
  which ``same_generation`` detects, and the finding is then dropped as inconclusive.
- Not detected (README, "Corrupt spool file"): damage confined to the last transaction of
  the WAL (it looks exactly like a crash in the middle of writing it), damage to frame
  headers that removes their salts or commit markers, and a WAL deleted or truncated
  outright; the ledger's high-water mark (``ledger.Mark``) covers those for records older
  than one housekeeping tick.
"""

from __future__ import annotations

import os
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

__all__ = ["WalDamage", "WalScan", "judge", "same_generation", "scan"]

_MAGIC: Final = (0x377F0682, 0x377F0683)  # little- / big-endian checksums
_HEADER: Final = 32
_FRAME_HEADER: Final = 24
_MAX_FRAMES: Final = 1_000_000  # a 4 GiB WAL: past this, stop reading (never hang an open)


@dataclass(frozen=True, slots=True)
class WalScan:
    """The frames of a WAL file that belong to its current generation."""

    size: int
    page_size: int
    salts: tuple[int, int]
    header_ok: bool
    frames: int  # frames carrying the current salts
    commits: tuple[int, ...]  # 1-based indexes of those that end a transaction

    @property
    def last_commit(self) -> int:
        return self.commits[-1] if self.commits else 0


@dataclass(frozen=True, slots=True)
class WalDamage:
    """Committed transactions of the WAL that SQLite's recovery skipped."""

    frames_accepted: int
    transactions_skipped: int
    frames_skipped: int
    header_ok: bool
    wal_bytes: int

    def detail(self) -> dict[str, object]:
        """The ``wal_damaged`` event's detail: the fields, ``header_ok`` as ``wal_header_ok``."""
        return {("wal_header_ok" if k == "header_ok" else k): v for k, v in asdict(self).items()}


def _checksum(data: bytes, big_endian: bool, s0: int = 0, s1: int = 0) -> tuple[int, int]:
    """SQLite's WAL checksum (wal.c walChecksumBytes) over ``data`` (a multiple of 8 bytes)."""
    words = struct.unpack(f"{'>' if big_endian else '<'}{len(data) // 4}I", data)
    for i in range(0, len(words), 2):
        s0 = (s0 + words[i] + s1) & 0xFFFFFFFF
        s1 = (s1 + words[i + 1] + s0) & 0xFFFFFFFF
    return s0, s1


def _read_header(fd: int) -> tuple[bytes, int] | None:
    head = os.pread(fd, _HEADER, 0)
    if len(head) < _HEADER:
        return None
    return head, os.fstat(fd).st_size


def scan(wal: Path) -> WalScan | None:
    """The current generation of ``wal``; None when there is no WAL or no frame in it."""
    try:
        fd = os.open(wal, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        got = _read_header(fd)
        if got is None:
            return None
        head, size = got
        magic, _version, page_size, _seq, salt1, salt2, c1, c2 = struct.unpack(">8I", head)
        header_ok = (
            magic in _MAGIC
            and page_size >= 512
            and page_size & (page_size - 1) == 0
            and _checksum(head[:24], magic == _MAGIC[1]) == (c1, c2)
        )
        if not header_ok:
            # SQLite ignores the whole WAL. Its frames still say which generation they are:
            # take frame 1's salts (and a page size that fits the file) to count them.
            page_size = page_size if 512 <= page_size <= 65536 else 4096
            first = os.pread(fd, _FRAME_HEADER, _HEADER)
            if len(first) < _FRAME_HEADER:
                return None
            salt1, salt2 = struct.unpack(">II", first[8:16])
        step = _FRAME_HEADER + page_size
        count = min((size - _HEADER) // step, _MAX_FRAMES)
        frames = 0
        commits: list[int] = []
        for n in range(count):
            frame = os.pread(fd, _FRAME_HEADER, _HEADER + n * step)
            if len(frame) < _FRAME_HEADER:
                break
            _pgno, commit, s1, s2 = struct.unpack(">IIII", frame[:16])
            if (s1, s2) != (salt1, salt2):
                continue  # a frame of an earlier generation (or damaged): not ours
            frames += 1
            if commit:
                commits.append(n + 1)
        if not frames:
            return None
        return WalScan(size, page_size, (salt1, salt2), header_ok, frames, tuple(commits))
    except OSError:
        return None
    finally:
        os.close(fd)


def same_generation(wal: Path, before: WalScan) -> bool:
    """True when ``wal`` still has the salts ``before`` was read with (no restart since)."""
    after = scan(wal)
    return after is not None and after.salts == before.salts


def judge(before: WalScan, frames_accepted: int) -> WalDamage | None:
    """Committed frames SQLite did not accept (``frames_accepted``: its mxFrame), or None.

    One skipped transaction behind an intact header is a crash mid-write (see the module
    docstring), not damage: None.
    """
    if frames_accepted < 0 or before.last_commit <= frames_accepted:
        return None
    skipped = [c for c in before.commits if c > frames_accepted]
    if len(skipped) < 2 and before.header_ok:
        return None
    return WalDamage(
        frames_accepted=frames_accepted,
        transactions_skipped=len(skipped),
        frames_skipped=before.last_commit - frames_accepted,
        header_ok=before.header_ok,
        wal_bytes=before.size,
    )
