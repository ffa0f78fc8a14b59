"""The health verdict of one spool, as ``yai-spool status`` reports it (pure).

Owns: the operator-facing meaning of a spool snapshot. ``assess(stats, now, thresholds)`` turns
one :class:`~yai_spool.spool.SpoolStats` into a :class:`Health`: a single :class:`Verdict`, a
one-line summary in plain words that names the problem and the next step, every problem found
(worst first) and the notes that change no verdict (drops, dead letters, a past error).

Verdicts, from best to worst (``Verdict.severity``; with several spools the worst one wins):

=========================  ======================================================================
``ok``                     nothing waits longer than the lag threshold, nothing is blocked
``lagging``                the oldest READY record is older than ``Thresholds.lag`` (default 60 s)
``stalled``                records wait, a flusher holds the lock, but deliveries keep failing
                           (the current error is transient or throttling and the oldest record
                           is past the lag threshold) or nothing was delivered for
                           ``Thresholds.stall`` (default 300 s)
``no-flusher``             records wait and no process holds the flusher lock: nobody ships them
``blocked-credentials``    the current error is a credentials/configuration class: only a human
                           fixes it (wrong key, expired token, unknown project/logstore)
``dropping``               a record was dropped less than ``Thresholds.drop_window`` ago (default
                           300 s): the spool is full, the disk is full or read-only, ...; records
                           are being lost now. Drops a live process could not write to the
                           database count too (the spool's ledger)
``corrupt``                the file cannot be opened as a spool, or a quarantine or data-loss
                           event is not acknowledged yet: the quarantined file, or the copy of a
                           damaged WAL, still sits next to the spool (a loss event without a copy
                           stays unacknowledged for ``LOSS_ACK_WINDOW``)
``permission-denied``      the spool exists but this user cannot read it
``missing``                no spool at that path
=========================  ======================================================================

Invariants:

- Pure: no I/O, no clock reads, no environment. The caller passes ``now`` and decides which
  quarantine events are acknowledged (``unacknowledged=``); the CLI checks whether the
  quarantined file still exists.
- SLS error codes are interpreted only through :mod:`yai_spool.sls.errors` (``classify_response``,
  ``DEFAULT_STATUS``): no code is named here, so a new code is classified in one place.
- An error counts as *current* only while it is newer than the last successful delivery.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from yai_spool.sls import errors
from yai_spool.sls.errors import (
    DEFAULT_STATUS,
    ErrorCode,
    Outcome,
    SLSError,
    classify_exception,
    classify_response,
)
from yai_spool.spool.types import LastError, SpoolEvent, SpoolStats

__all__ = [
    "LOSS_ACK_WINDOW",
    "LOSS_EVENTS",
    "QUARANTINE_EVENT",
    "Finding",
    "Health",
    "Thresholds",
    "Verdict",
    "assess",
    "error_outcome",
    "format_age",
    "quarantine_events",
    "unreadable",
    "worst",
]

#: ``SpoolEvent.kind`` of a corrupt file moved aside (``yai_spool.spool`` invariant 9).
QUARANTINE_EVENT: Final = "quarantined"
#: ``SpoolEvent.kind`` of committed records lost at open: SQLite skipped committed
#: transactions of a damaged WAL (``spool.walcheck``; ``saved_to`` is a copy of that WAL) or
#: the spool holds fewer records than its ledger's high-water mark (``spool.ledger``).
LOSS_EVENTS: Final = ("wal_damaged", "records_missing")
#: How long a loss event with no saved copy to delete stays unacknowledged (seconds).
LOSS_ACK_WINDOW: Final = 24 * 3600.0


class Verdict(StrEnum):
    """One word for the state of a spool; ``severity`` orders them (higher is worse)."""

    OK = "ok"
    LAGGING = "lagging"
    STALLED = "stalled"
    NO_FLUSHER = "no-flusher"
    BLOCKED_CREDENTIALS = "blocked-credentials"
    DROPPING = "dropping"
    CORRUPT = "corrupt"
    PERMISSION_DENIED = "permission-denied"
    MISSING = "missing"

    @property
    def severity(self) -> int:
        """0 for ``ok``, growing with how much a human is needed (declaration order)."""
        return _ORDER.index(self)


_ORDER: Final = tuple(Verdict)


def worst(verdicts: Iterable[Verdict]) -> Verdict:
    """The most severe verdict (``ok`` for none)."""
    return max(verdicts, key=lambda v: v.severity, default=Verdict.OK)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When waiting becomes a problem, in seconds.

    Args:
        lag: the oldest READY record older than this makes the spool ``lagging``.
        stall: a flusher holding the lock that delivered nothing for this long while the
            oldest record waited this long makes the spool ``stalled``.
        drop_window: a record dropped less than this long ago makes the spool ``dropping``.
    """

    lag: float = 60.0
    stall: float = 300.0
    drop_window: float = 300.0

    def __post_init__(self) -> None:
        for name in ("lag", "stall", "drop_window"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"Thresholds.{name} must be a number, got {type(value).__name__}")
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"Thresholds.{name} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: the verdict it implies and what to tell the operator."""

    verdict: Verdict
    message: str


@dataclass(frozen=True, slots=True)
class Health:
    """The verdict of one spool.

    Attributes:
        verdict: the worst finding (``ok`` when there is none).
        summary: one line in plain words: what is wrong and what to do (or why all is well).
        findings: every problem found, worst first.
        notes: observations that change no verdict (drops, dead letters, a past error).
    """

    verdict: Verdict
    summary: str
    findings: tuple[Finding, ...] = ()
    notes: tuple[str, ...] = ()


def format_age(seconds: float | None) -> str:
    """``3s``, ``4m 05s``, ``2h 07m``, ``3d 04h``; ``-`` for None. Negative ages read as 0."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"


def error_outcome(error: LastError) -> Outcome | None:
    """How the flusher classified ``error``; None when that cannot be told from the record.

    With the HTTP status the flusher recorded, ``errors.classify_response`` decides. Errors
    recorded without one (older spools) fall back to the status the service answers a known
    code with (``errors.DEFAULT_STATUS``).
    A code that is not an SLS code is the class name of an exception the flusher recorded for a
    failure without an HTTP answer (``ConnectError``, ``CredentialsError``, ``OSError``...):
    those are classified by ``errors.classify_exception``. Anything else (reasons the flusher
    gives when it dead-letters a record itself) is None.
    """
    status = error.status
    try:
        code = ErrorCode(error.code)
    except ValueError:
        if isinstance(status, int):
            return classify_response(status, error.code, error.message)
        return _exception_outcome(error.code)
    if not isinstance(status, int):
        status = DEFAULT_STATUS.get(code)
        if status is None:
            return None
    return classify_response(status, code, error.message)


def _exception_outcome(name: str) -> Outcome | None:
    cls = getattr(errors, name, None) or getattr(builtins, name, None)
    if not isinstance(cls, type) or not issubclass(cls, Exception) or issubclass(cls, SLSError):
        return None
    # classify_exception only tests the type; an instance built without __init__ is enough.
    return classify_exception(cls.__new__(cls))


def quarantine_events(stats: SpoolStats) -> tuple[SpoolEvent, ...]:
    """The quarantine and data-loss events in ``stats`` (newest first, as listed there)."""
    return tuple(e for e in stats.events if e.kind == QUARANTINE_EVENT or e.kind in LOSS_EVENTS)


def _attention(event: SpoolEvent, now: float) -> str:
    """The operator's sentence for an unacknowledged quarantine or data-loss event."""
    ago = format_age(now - event.at)
    detail = event.detail
    if event.kind == QUARANTINE_EVENT:
        moved = detail.get("moved_to", "?")
        reason = detail.get("reason", "unknown reason")
        return (
            f"the spool file was corrupt ({reason}) and was moved aside to {moved} "
            f"{ago} ago; records in it are not shipped. Salvage what you need, then delete "
            "or move that file to acknowledge"
        )
    missing = detail.get("records_missing")
    lost = f"{missing:,} committed records are missing" if isinstance(missing, int) else ""
    saved = detail.get("saved_to")
    ack = (
        f"; the damaged WAL was saved to {saved}: delete or move it to acknowledge" if saved else ""
    )
    if event.kind == "wal_damaged":
        skipped = detail.get("transactions_skipped", "?")
        what = (lost + " and ") if lost else ""
        return (
            f"the spool's WAL was damaged ({ago} ago): SQLite skipped {skipped} committed "
            f"transaction(s) when it opened the file, so {what}records written in them were "
            f"lost or rolled back{ack}. Check the disk"
        )
    return (
        f"{lost or 'committed records are missing'} ({ago} ago): the spool holds fewer records "
        "than it had accepted (its ledger's high-water mark); the WAL or the file was lost or "
        "replaced by an older copy. Check the disk"
    )


def _current_error(stats: SpoolStats) -> LastError | None:
    error = stats.last_error
    if error is None:
        return None
    if stats.last_success_at is not None and stats.last_success_at >= error.at:
        return None  # a delivery succeeded after it: the link works again
    return error


def _describe_error(error: LastError, now: float) -> str:
    rid = f"request id {error.request_id}, " if error.request_id else ""
    message = error.message.strip()
    text = f"{error.code}: {message}" if message else error.code
    return f"{text} ({rid}{format_age(now - error.at)} ago)"


def _flusher_words(pid: int | None) -> str:
    return "a flusher that has not written its pid yet" if pid == 0 else f"flusher pid {pid}"


def _records(n: int) -> str:
    return f"{n:,} record" + ("" if n == 1 else "s")


def assess(
    stats: SpoolStats,
    now: float,
    thresholds: Thresholds | None = None,
    *,
    unacknowledged: Sequence[SpoolEvent] | None = None,
) -> Health:
    """Judge one spool snapshot.

    Args:
        stats: the snapshot (``Spool.stats()``).
        now: the current wall-clock time (unix seconds) the ages are measured against.
        thresholds: lag and stall thresholds (defaults: 60 s and 300 s).
        unacknowledged: quarantine events the operator has not dealt with yet; ``None`` means
            every quarantine event in ``stats`` is unacknowledged.
    """
    limits = thresholds if thresholds is not None else Thresholds()
    findings: list[Finding] = []
    notes: list[str] = []
    pending = stats.ready_records + stats.leased_records
    oldest = stats.oldest_ready_age
    flusher = stats.flusher_pid
    waiting = (
        f"{_records(pending)} waiting, oldest {format_age(oldest)}"
        if oldest is not None
        else f"{_records(pending)} in flight"
    )

    quarantines = quarantine_events(stats) if unacknowledged is None else tuple(unacknowledged)
    for event in quarantines:
        findings.append(Finding(Verdict.CORRUPT, _attention(event, now)))

    last_drop = stats.last_drop_at
    if last_drop is not None and now - last_drop <= limits.drop_window:
        reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(stats.dropped.items()))
        findings.append(
            Finding(
                Verdict.DROPPING,
                f"records are being dropped: the newest drop was {format_age(now - last_drop)} "
                f"ago ({_records(stats.dropped_total)} dropped in all: {reasons or 'see counters'})"
                ". Free disk space, raise max_spool_records/max_spool_bytes, or get the "
                "flusher shipping",
            )
        )

    error = _current_error(stats)
    outcome = error_outcome(error) if error is not None else None
    error_told = False  # the current error appears in a finding (else it becomes a note)
    if error is not None and outcome is Outcome.CREDENTIALS:
        error_told = True
        findings.append(
            Finding(
                Verdict.BLOCKED_CREDENTIALS,
                f"SLS refuses our credentials or destination: {_describe_error(error, now)}; "
                f"{waiting}, all kept. Fix the access key, token, project or logstore"
                + ("; the flusher retries by itself" if flusher is not None else ""),
            )
        )

    if pending and flusher is None:
        findings.append(
            Finding(
                Verdict.NO_FLUSHER,
                f"{waiting} and no process is shipping them (nobody holds the flusher lock). "
                "Start 'yai-spool run' or an application with SpoolHandler(flusher='thread')",
            )
        )

    if stats.ready_records and flusher is not None and oldest is not None:
        failing = error is not None and outcome in (Outcome.RETRY, Outcome.THROTTLED)
        if error is not None and failing and oldest >= limits.lag:
            error_told = True
            findings.append(
                Finding(
                    Verdict.STALLED,
                    f"deliveries keep failing: {_describe_error(error, now)}; {waiting}; "
                    f"{_flusher_words(flusher)} keeps retrying",
                )
            )
        elif oldest >= limits.stall and (
            stats.last_success_at is None or now - stats.last_success_at >= limits.stall
        ):
            last = (
                "never delivered anything"
                if stats.last_success_at is None
                else f"delivered nothing for {format_age(now - stats.last_success_at)}"
            )
            findings.append(
                Finding(
                    Verdict.STALLED,
                    f"{_flusher_words(flusher)} holds the lock but {last}; {waiting}. "
                    "Check that process (hung request? wrong endpoint?)",
                )
            )
        elif oldest >= limits.lag:
            findings.append(
                Finding(
                    Verdict.LAGGING,
                    f"the oldest record has waited {format_age(oldest)} (threshold "
                    f"{format_age(limits.lag)}); {_records(pending)} waiting; "
                    f"{_flusher_words(flusher)} is shipping",
                )
            )

    if error is not None and not error_told:
        notes.append(f"last error: {_describe_error(error, now)}")
    if stats.dead_records:
        notes.append(
            f"{_records(stats.dead_records)} dead-lettered (SLS refused them or they expired); "
            "inspect with 'yai-spool peek --state dead', requeue with 'yai-spool replay'"
        )
    if stats.dropped_total:
        reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(stats.dropped.items()))
        notes.append(f"{_records(stats.dropped_total)} dropped since creation ({reasons})")

    findings.sort(key=lambda f: f.verdict.severity, reverse=True)
    if findings:
        verdict = findings[0].verdict
        summary = findings[0].message
    else:
        verdict = Verdict.OK
        delivered = (
            f"last delivery {format_age(now - stats.last_success_at)} ago"
            if stats.last_success_at is not None
            else "nothing delivered yet"
        )
        state = waiting if pending else "empty"
        dead = f"; {_records(stats.dead_records)} dead-lettered" if stats.dead_records else ""
        summary = f"healthy: {state}; {delivered}{dead}"
    return Health(verdict, summary, tuple(findings), tuple(notes))


def unreadable(verdict: Verdict, why: str) -> Health:
    """The health of a spool that could not be read (missing, permission denied, corrupt)."""
    return Health(verdict, why, (Finding(verdict, why),))
