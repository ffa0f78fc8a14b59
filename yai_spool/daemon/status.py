"""What the daemon knows about its spools at one instant, and the one-line STATUS summary.

Owns ``SpoolSnapshot`` (one spool's durable stats plus this daemon's flusher state) and
``status_line`` (the ``STATUS=`` text systemd shows in ``systemctl status``). Pure: no I/O.
The leading word is the worst ``yai_spool.ops.health`` verdict over the spools, the same words
``yai-spool status`` prints (``ok``, ``lagging``, ``stalled``, ``blocked-credentials``, ...).

Invariants: the STATUS line is one short line and never holds a secret or an SLS error
message (only error codes, which are fixed identifiers); "last error" is shown only while it
is newer than that spool's last success, so a recovered spool reads as healthy. Quarantine
events do not pin the verdict here (the daemon logs them when it opens a spool; the CLI tracks
whether an operator dealt with them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from yai_spool.daemon.config import SpoolTarget
from yai_spool.ops import health
from yai_spool.ops.health import Verdict
from yai_spool.spool import SpoolStats

__all__ = ["DaemonTotals", "SpoolSnapshot", "status_line"]


@dataclass(frozen=True, slots=True)
class SpoolSnapshot:
    """One managed spool: what the file says and what our flusher does."""

    target: SpoolTarget
    stats: SpoolStats | None  # None when reading the spool failed just now
    flusher: dict[str, Any]  # FlusherStats.snapshot() of this daemon's flusher
    holder: bool  # this daemon holds the spool's flusher lock
    error: str | None = None  # why stats is None


@dataclass(frozen=True, slots=True)
class DaemonTotals:
    """Process-wide numbers (flusher counters survive flusher restarts through these)."""

    delivered: int
    requests: int
    reloads: int
    reload_failures: int
    flusher_restarts: int


def _unreadable_verdict(error: str | None) -> Verdict:
    if error and error.startswith("SpoolPermissionError"):
        return Verdict.PERMISSION_DENIED
    if error and error.startswith("SpoolCorruptError"):
        return Verdict.CORRUPT
    return Verdict.STALLED  # a transient read failure (busy, I/O): shipping may be stuck


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def status_line(snapshots: Sequence[SpoolSnapshot], totals: DaemonTotals, now: float) -> str:
    """``ok: 3 spools (2 flushing), 120 ready, 4512 delivered, last error: none``."""
    verdicts = [
        health.assess(s.stats, now, unacknowledged=()).verdict
        if s.stats is not None
        else _unreadable_verdict(s.error)
        for s in snapshots
    ]
    flushing = sum(1 for s in snapshots if s.holder)
    ready = sum(s.stats.ready_records for s in snapshots if s.stats is not None)
    dead = sum(s.stats.dead_records for s in snapshots if s.stats is not None)
    latest: tuple[float, str] | None = None
    for snap in snapshots:
        stats = snap.stats
        if stats is None:
            latest = max(latest or (0.0, ""), (now, f"unreadable ({snap.target.path.name})"))
            continue
        err = stats.last_error
        if err is None or (stats.last_success_at is not None and stats.last_success_at >= err.at):
            continue
        candidate = (
            err.at,
            f"{err.code} {_age(max(now - err.at, 0.0))} ago ({snap.target.path.name})",
        )
        latest = candidate if latest is None or candidate[0] > latest[0] else latest
    parts = [
        f"{health.worst(verdicts).value}: {len(snapshots)} "
        f"spool{'s' if len(snapshots) != 1 else ''} ({flushing} flushing)",
        f"{ready} ready",
        f"{totals.delivered} delivered",
    ]
    if dead:
        parts.append(f"{dead} dead")
    parts.append(f"last error: {latest[1] if latest else 'none'}")
    return ", ".join(parts)
