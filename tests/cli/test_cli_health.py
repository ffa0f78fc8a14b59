"""``yai_spool.ops.health``: the verdict rules, table-driven over synthetic snapshots (pure)."""

from __future__ import annotations

from dataclasses import MISSING, fields, replace
from types import MappingProxyType
from typing import Any

import pytest

from yai_spool.ops import health as rules
from yai_spool.ops.health import Thresholds, Verdict, assess
from yai_spool.sls.errors import ErrorCode, Outcome
from yai_spool.spool import LastError, SpoolEvent, SpoolStats

NOW = 1_800_000_000.0


def snapshot(**changes: Any) -> SpoolStats:
    """An idle spool's stats (every count 0, nothing waiting) with ``changes`` applied."""
    required = [
        f.name for f in fields(SpoolStats) if f.default is MISSING and f.default_factory is MISSING
    ]
    base: dict[str, Any] = dict.fromkeys(required, 0)
    base.update(
        path="/x/app.spool",
        schema_version=1,
        oldest_ready_enqueued_at=None,
        oldest_ready_age=None,
    )
    return SpoolStats(**{**base, **changes})


def waiting(age: float, n: int = 3, **changes: Any) -> SpoolStats:
    return snapshot(
        ready_records=n,
        ready_bytes=100 * n,
        oldest_ready_enqueued_at=NOW - age,
        oldest_ready_age=age,
        **changes,
    )


def error(code: str, ago: float, message: str = "m") -> LastError:
    return LastError(code, message, "RID", NOW - ago)


@pytest.mark.parametrize(
    ("stats", "verdict"),
    [
        (snapshot(), Verdict.OK),
        (waiting(5, flusher_pid=42), Verdict.OK),
        (waiting(61, flusher_pid=42), Verdict.LAGGING),
        (waiting(1), Verdict.NO_FLUSHER),
        (snapshot(leased_records=2, leased_bytes=9, active_leases=1), Verdict.NO_FLUSHER),
        # Failing for a while with a transient error: stalled; the same error a moment after
        # the records arrived: still ok (one blip), the error becomes a note.
        (waiting(90, flusher_pid=42, last_error=error(ErrorCode.ServerBusy, 5)), Verdict.STALLED),
        (waiting(5, flusher_pid=42, last_error=error(ErrorCode.ServerBusy, 1)), Verdict.OK),
        (waiting(90, flusher_pid=42, last_error=error("ConnectError", 5)), Verdict.STALLED),
        # Throttling is a transient failure too.
        (
            waiting(90, flusher_pid=42, last_error=error(ErrorCode.WriteQuotaExceed, 5)),
            Verdict.STALLED,
        ),
        # An error older than the last success is history.
        (
            waiting(
                90,
                flusher_pid=42,
                last_error=error(ErrorCode.ServerBusy, 50),
                last_success_at=NOW - 10,
            ),
            Verdict.LAGGING,
        ),
        # Nothing delivered for the stall threshold while a flusher holds the lock.
        (waiting(400, flusher_pid=42), Verdict.STALLED),
        (waiting(400, flusher_pid=42, last_success_at=NOW - 5), Verdict.LAGGING),
        (waiting(400, flusher_pid=0), Verdict.STALLED),  # 0: holder not written its pid yet
        # Credentials and destination errors need a human, flusher or not.
        (waiting(1, flusher_pid=42, last_error=error(ErrorCode.SignatureNotMatch, 1)),
         Verdict.BLOCKED_CREDENTIALS),
        (waiting(1, last_error=error(ErrorCode.LogStoreNotExist, 1)), Verdict.BLOCKED_CREDENTIALS),
        (snapshot(last_error=error("CredentialsError", 1)), Verdict.BLOCKED_CREDENTIALS),
        # A poison record dead-lettered by the flusher is not a stall: the link works.
        (waiting(90, flusher_pid=42, last_error=error(ErrorCode.PostBodyInvalid, 1)),
         Verdict.LAGGING),
        (waiting(90, flusher_pid=42, last_error=error("MaxAgeExceeded", 1)), Verdict.LAGGING),
    ],
)  # fmt: skip
def test_verdicts(stats: SpoolStats, verdict: Verdict) -> None:
    health = assess(stats, NOW)
    assert health.verdict is verdict, health.summary
    assert "\n" not in health.summary
    assert [f.verdict for f in health.findings] == sorted(
        (f.verdict for f in health.findings), key=lambda v: v.severity, reverse=True
    )


def test_worst_finding_wins_and_all_are_kept() -> None:
    stats = waiting(120, last_error=error(ErrorCode.InvalidAccessKeyId, 3, "bad key"))
    health = assess(stats, NOW)
    assert health.verdict is Verdict.BLOCKED_CREDENTIALS
    assert [f.verdict for f in health.findings] == [
        Verdict.BLOCKED_CREDENTIALS,
        Verdict.NO_FLUSHER,
    ]
    assert health.summary.startswith(
        "SLS refuses our credentials or destination: InvalidAccessKeyId: bad key "
        "(request id RID, 3s ago); 3 records waiting, oldest 2m 00s, all kept"
    )


def test_quarantine_is_corrupt_until_acknowledged() -> None:
    event = SpoolEvent(
        NOW - 60,
        "quarantined",
        MappingProxyType({"moved_to": "/x/app.spool.corrupt-1Z", "reason": "SQLITE_NOTADB"}),
    )
    stats = snapshot(events=(event,))
    health = assess(stats, NOW)
    assert health.verdict is Verdict.CORRUPT
    assert "moved aside to /x/app.spool.corrupt-1Z 1m 00s ago" in health.summary
    assert assess(stats, NOW, unacknowledged=()).verdict is Verdict.OK


def test_thresholds_and_notes() -> None:
    stats = waiting(
        30,
        flusher_pid=42,
        dead_records=2,
        dropped=MappingProxyType({"drop_oldest": 5, "too_large": 1}),
        last_success_at=NOW - 2,
    )
    assert assess(stats, NOW, Thresholds(lag=10)).verdict is Verdict.LAGGING
    health = assess(stats, NOW)
    assert health.summary == (
        "healthy: 3 records waiting, oldest 30s; last delivery 2s ago; 2 records dead-lettered"
    )
    assert any("6 records dropped since creation (drop_oldest 5, too_large 1)" in n
               for n in health.notes)  # fmt: skip
    with pytest.raises(ValueError, match="lag"):
        Thresholds(lag=-1)


def test_helpers() -> None:
    assert [rules.format_age(s) for s in (None, -3, 59.9, 61, 3661, 90061)] == [
        "-",
        "0s",
        "59s",
        "1m 01s",
        "1h 01m",
        "1d 01h",
    ]
    assert rules.worst([]) is Verdict.OK
    assert rules.worst([Verdict.LAGGING, Verdict.MISSING, Verdict.CORRUPT]) is Verdict.MISSING
    assert rules.unreadable(Verdict.MISSING, "no spool").summary == "no spool"
    assert rules.error_outcome(error(ErrorCode.BadResponse, 0)) is Outcome.RETRY
    assert rules.error_outcome(error("RequestTimeout", 0)) is Outcome.RETRY
    assert rules.error_outcome(error("EncodeError", 0)) is Outcome.REJECTED
    assert rules.error_outcome(error("SomethingNew", 0)) is None
    # With the recorded HTTP status even a code errors.py has never seen is classified.
    assert rules.error_outcome(replace(error("SomethingNew", 0), status=401)) is Outcome.CREDENTIALS
    assert (
        rules.error_outcome(replace(error(ErrorCode.Unauthorized, 0), status=503)) is Outcome.RETRY
    )
