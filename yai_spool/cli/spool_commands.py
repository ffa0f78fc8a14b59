"""The operator's ``yai-spool`` commands over spool files.

Owns: ``status``, ``peek``, ``replay``, ``export``, ``purge``, ``vacuum`` and ``doctor``, their
text and JSON renderings, and the exit codes below. ``yai_spool/cli.py`` only calls
``register_spool_commands(app)``. The health verdict itself is :mod:`yai_spool.ops.health`.

Exit codes (``ExitCode``; stable, scripts may rely on them; with several spools the worst wins):

====  =====================  ==================================================================
0     ok                     healthy / the command did what was asked
1     error                  unexpected failure (I/O error, bug); the message says which
2     usage                  bad command line (unknown option, bad duration or time)
3     lagging                the oldest waiting record is older than --lag-threshold
4     stalled                a flusher runs but deliveries keep failing or nothing ships
5     no-flusher             records wait and no process ships them
6     blocked-credentials    SLS refuses the credentials/destination; a human must fix it
7     corrupt                not a readable spool, or an unacknowledged quarantine or
                             data-loss event (a damaged WAL, records missing)
8     permission-denied      the spool exists but this user cannot read it
9     missing                no spool at that path (or no ``*.spool`` file in a directory)
10    refused                a confirmation is needed (--yes / --force) or another flusher
                             holds the spool; nothing was changed
11    checks-failed          ``doctor``: at least one check failed
12    send-failed            ``replay --send-now``: SLS did not accept everything (kept)
13    not-configured         credentials, endpoint or --config file missing or invalid
14    dropping               a record was dropped within --drop-window (spool or disk full,
                             read-only disk ...): records are being lost now
====  =====================  ==================================================================

Invariants:

- Reading commands (``status``, ``peek``, ``export``, ``doctor``) open spools read-only
  (``Spool.open_readonly``) and are safe on a live spool while producers append and a flusher
  ships. Only ``replay``, ``purge`` and ``vacuum`` open a spool for writing, only through the
  ``Spool`` API (each call one transaction), never create a missing spool, and refuse to run as
  root on a spool another user owns (files they create would lock the service out).
- ``vacuum`` and ``replay --send-now`` take the spool's flusher lock for their duration and are
  refused while another process holds it: VACUUM blocks every writer while it rewrites the
  file (producers would drop records as ``busy`` after their busy timeout), and a second
  shipper would only compete for leases. ``vacuum --force`` skips the check.
- No secret is ever printed: credentials are passed around as providers, and only the masked
  access key id (``LTAI****``) appears in output.
- ``--json`` prints exactly one JSON document on stdout (JSON lines for record streams:
  ``peek``, ``export``); progress bars, prompts and warnings go to stderr.
- Nothing here knows the spool's SQL schema: records are read through ``Spool.queued`` /
  ``Spool.dead_letters`` on a read-only handle.
- Records are only deleted by SLS answering 200 (``replay --send-now`` settles every batch
  through ``flusher.ShipCycle``) or by an explicit, confirmed ``purge``.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import os
import re
import shutil
import stat
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from yai_spool.ops.health import (
    LOSS_ACK_WINDOW,
    QUARANTINE_EVENT,
    Health,
    Thresholds,
    Verdict,
    assess,
    error_outcome,
    format_age,
    quarantine_events,
    unreadable,
    worst,
)
from yai_spool.sls.credentials import CredentialsProvider, mask_key_id
from yai_spool.sls.errors import ConfigError, Outcome, SLSError, TransportError, YaiSpoolError
from yai_spool.spool import (
    RecordState,
    Spool,
    SpoolCorruptError,
    SpoolError,
    SpoolEvent,
    SpoolPermissionError,
    SpoolSchemaError,
    SpoolStats,
    SpoolStorageError,
)
from yai_spool.spool.destination import decode_dest

if TYPE_CHECKING:
    from yai_spool.daemon.config import DaemonConfig

__all__ = ["EXIT_CODES", "ExitCode", "register_spool_commands"]


class ExitCode(IntEnum):
    """Process exit codes of the spool commands (see the module docstring)."""

    OK = 0
    ERROR = 1
    USAGE = 2
    LAGGING = 3
    STALLED = 4
    NO_FLUSHER = 5
    BLOCKED_CREDENTIALS = 6
    CORRUPT = 7
    PERMISSION_DENIED = 8
    MISSING = 9
    REFUSED = 10
    CHECKS_FAILED = 11
    SEND_FAILED = 12
    NOT_CONFIGURED = 13
    DROPPING = 14


#: The verdict -> exit code mapping of ``status`` (and of any command that meets the verdict).
VERDICT_EXIT: Final[dict[Verdict, ExitCode]] = {
    Verdict.OK: ExitCode.OK,
    Verdict.LAGGING: ExitCode.LAGGING,
    Verdict.STALLED: ExitCode.STALLED,
    Verdict.NO_FLUSHER: ExitCode.NO_FLUSHER,
    Verdict.BLOCKED_CREDENTIALS: ExitCode.BLOCKED_CREDENTIALS,
    Verdict.DROPPING: ExitCode.DROPPING,
    Verdict.CORRUPT: ExitCode.CORRUPT,
    Verdict.PERMISSION_DENIED: ExitCode.PERMISSION_DENIED,
    Verdict.MISSING: ExitCode.MISSING,
}

#: (code, meaning) as ``--help`` shows them.
EXIT_CODES: Final[tuple[tuple[ExitCode, str], ...]] = (
    (ExitCode.OK, "ok / done"),
    (ExitCode.ERROR, "unexpected error"),
    (ExitCode.USAGE, "bad command line"),
    (ExitCode.LAGGING, "lagging"),
    (ExitCode.STALLED, "stalled"),
    (ExitCode.NO_FLUSHER, "no-flusher"),
    (ExitCode.BLOCKED_CREDENTIALS, "blocked-credentials"),
    (ExitCode.CORRUPT, "corrupt"),
    (ExitCode.PERMISSION_DENIED, "permission denied"),
    (ExitCode.MISSING, "missing spool"),
    (ExitCode.REFUSED, "refused: needs --yes/--force, or another flusher holds the spool"),
    (ExitCode.CHECKS_FAILED, "doctor: a check failed"),
    (ExitCode.SEND_FAILED, "replay --send-now: SLS did not accept everything (records kept)"),
    (ExitCode.NOT_CONFIGURED, "credentials, endpoint or --config missing or invalid"),
    (ExitCode.DROPPING, "dropping: a record was dropped within --drop-window"),
)

# Keys the record mapper writes by default (yai_spool.handlers.mapping: LogFields.level /
# record_name).
_LEVEL_KEY: Final = "levelname"
_LOGGER_KEY: Final = "name"
_MESSAGE_KEY: Final = "message"
_LEVELS: Final = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "WARN": 30, "ERROR": 40, "CRITICAL": 50}

_PAGE: Final = 500  # rows per read: each page is its own short read, never a long snapshot
_MiB: Final = 1024 * 1024


# ------------------------------------------------------------------------------ failures


class _Unavailable(Exception):
    """A spool that cannot be used, with the verdict that says why."""

    def __init__(self, verdict: Verdict, message: str) -> None:
        super().__init__(message)
        self.verdict = verdict
        self.message = message


class _Stop(Exception):
    """End a command with ``code`` after printing ``message`` to stderr."""

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _guarded(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """Turn expected failures into a one-line message on stderr and a documented exit code."""

    @functools.wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return func(*args, **kwargs)
        except _Unavailable as exc:
            _err().print(f"yai-spool: {exc.verdict}: {escape(exc.message)}", soft_wrap=True)
            raise typer.Exit(VERDICT_EXIT[exc.verdict]) from None
        except _Stop as exc:
            _err().print(f"yai-spool: {escape(exc.message)}", soft_wrap=True)
            raise typer.Exit(exc.code) from None
        except BrokenPipeError:
            # 'peek --json | head': the reader is gone, which is not an error. Point stdout at
            # /dev/null so the interpreter's final flush does not fail again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(ExitCode.OK) from None
        except (SpoolError, YaiSpoolError, OSError) as exc:
            # Messages of our exceptions never hold a secret (errors.py / spool invariants).
            _err().print(f"yai-spool: error: {escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(ExitCode.ERROR) from None

    return wrapper


def _out() -> Console:
    return Console(highlight=False)


def _err() -> Console:
    return Console(stderr=True, highlight=False)


def _print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, ensure_ascii=False, default=str) + "\n")


# ------------------------------------------------------------------------------ parsing

_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)([smhdw]?))", re.IGNORECASE)
_UNITS: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``10m``, ``2h``, ``1d``, ``1h30m`` -> seconds.

    Raises:
        typer.BadParameter: anything else.
    """
    value = text.strip().replace(" ", "")
    pos, total = 0, 0.0
    for match in _DURATION.finditer(value):
        if match.start() != pos or not match.group(0):
            break
        total += float(match.group(1)) * _UNITS[match.group(2).lower()]
        pos = match.end()
    if not value or pos != len(value):
        raise typer.BadParameter(f"{text!r} is not a duration (examples: 90, 45s, 10m, 2h, 1d)")
    return total


def parse_when(text: str, now: float) -> float:
    """An ISO 8601 time (naive = local time) or a relative age (``10m`` = 10 minutes ago).

    Raises:
        typer.BadParameter: neither.
    """
    value = text.strip()
    if value.lower() == "now":
        return now
    try:
        return now - parse_duration(value)
    except typer.BadParameter:
        pass
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither an ISO time (2026-11-28T10:00:00, +08:00 or Z) nor an age "
            "(10m, 2h, 1d)"
        ) from None
    if when.tzinfo is None:
        when = when.astimezone()  # naive: the operator's local time
    return when.timestamp()


def _iso(ts: float | None) -> str:
    if ts is None or not math.isfinite(ts):
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover - the loop always returns


# ------------------------------------------------------------------------------ opening


def _check_file(path: Path) -> None:
    """Tell missing from permission denied before SQLite turns both into 'unable to open'."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise _Unavailable(
            Verdict.MISSING, f"no spool at {path} (no such file or directory)"
        ) from None
    except NotADirectoryError:
        raise _Unavailable(
            Verdict.MISSING, f"no spool at {path} (a parent of it is a file, not a directory)"
        ) from None
    except PermissionError:
        raise _Unavailable(
            Verdict.PERMISSION_DENIED,
            f"cannot reach {path}: permission denied on a parent directory; run as the "
            "service's user (or with sudo)",
        ) from None
    if stat.S_ISDIR(st.st_mode):
        raise _Unavailable(Verdict.MISSING, f"{path} is a directory, not a spool file")
    if not os.access(path, os.R_OK):
        raise _Unavailable(
            Verdict.PERMISSION_DENIED,
            f"cannot read {path}: permission denied (owner uid {st.st_uid}, mode "
            f"{stat.S_IMODE(st.st_mode):04o}); run as the service's user (or with sudo)",
        )


def _open_error(path: Path, exc: SpoolError) -> _Unavailable:
    """The verdict an open failure implies; re-raises ``exc`` when it implies none."""
    if isinstance(exc, SpoolCorruptError | SpoolSchemaError):
        return _Unavailable(Verdict.CORRUPT, f"{path} cannot be read as a spool: {exc}")
    if isinstance(exc, SpoolPermissionError) or (
        isinstance(exc, SpoolStorageError) and exc.reason == "permission"
    ):
        return _Unavailable(
            Verdict.PERMISSION_DENIED,
            f"cannot open {path}: {exc}; the spool needs read access to the file and its "
            "directory (SQLite's -wal/-shm files live there)",
        )
    # Anything else (busy beyond the busy timeout, an I/O error) says nothing about the file
    # itself: it stays an error (exit 1) with SQLite's words, not a verdict.
    raise exc


def _open_readonly(path: Path) -> Spool:
    _check_file(path)
    try:
        return Spool.open_readonly(path)
    except SpoolError as exc:
        raise _open_error(path, exc) from exc


def _check_writable(path: Path) -> None:
    """Refuse root on a spool owned by another user, before anything is asked or changed.

    Lock files this process might create would belong to root (0600) and lock the service out
    of its own spool.
    """
    _check_file(path)
    owner = os.stat(path).st_uid
    if os.geteuid() == 0 and owner != 0:
        raise _Stop(
            ExitCode.REFUSED,
            f"{path} belongs to uid {owner}; run this command as that user "
            f"(sudo -u '#{owner}' yai-spool ...) so every file it touches stays theirs",
        )


def _open_writable(path: Path) -> Spool:
    """For replay/purge/vacuum: a missing file is an error here, never a new empty spool."""
    _check_writable(path)
    try:
        return Spool(path)
    except SpoolError as exc:
        raise _open_error(path, exc) from exc


def _default_spool_dir() -> Path:
    # Imported here: handler pulls in the flusher and the HTTP client, which status never needs.
    from yai_spool.handlers.durable import default_spool_path  # noqa: PLC0415

    return default_spool_path("project", "logstore").parent


def _discover(paths: Sequence[Path]) -> list[tuple[Path, _Unavailable | None]]:
    """Spool files named, or found as ``*.spool`` in named directories (default: the handler's)."""
    out: list[tuple[Path, _Unavailable | None]] = []
    for given in paths or [_default_spool_dir()]:
        path = Path(os.path.abspath(given))
        try:
            is_dir = stat.S_ISDIR(os.stat(path).st_mode)
        except OSError:
            is_dir = False  # _check_file tells missing from permission denied
        if not is_dir:
            out.append((path, None))
            continue
        try:
            # os.scandir, not Path.glob: glob hides an unreadable directory as an empty one.
            with os.scandir(path) as entries:
                found = sorted(
                    path / e.name for e in entries if e.name.endswith(".spool") and e.is_file()
                )
        except PermissionError:
            out.append(
                (
                    path,
                    _Unavailable(
                        Verdict.PERMISSION_DENIED, f"cannot list {path}: permission denied"
                    ),
                )
            )
            continue
        if not found:
            out.append((path, _Unavailable(Verdict.MISSING, f"no *.spool file in {path}")))
        out.extend((p, None) for p in found)
    return out


def _unacknowledged(stats: SpoolStats, now: float | None = None) -> list[SpoolEvent]:
    """Quarantine / data-loss events not acknowledged yet.

    Deleting (or moving) the file the event left acknowledges it: the quarantined spool, or
    the saved copy of a damaged WAL. A loss event that could not save a copy (a full disk)
    stays unacknowledged for ``LOSS_ACK_WINDOW``.
    """
    now = time.time() if now is None else now
    out = []
    for event in quarantine_events(stats):
        if event.kind == QUARANTINE_EVENT:
            moved = event.detail.get("moved_to")
            if not isinstance(moved, str) or os.path.lexists(moved):
                out.append(event)
            continue
        saved = event.detail.get("saved_to")
        if isinstance(saved, str):
            if os.path.lexists(saved):
                out.append(event)
        elif now - event.at < LOSS_ACK_WINDOW:
            out.append(event)
    return out


# ------------------------------------------------------------------------------ records


@dataclass(frozen=True, slots=True)
class SpooledRecord:
    """One record as the CLI shows and exports it, whatever its state."""

    id: int
    state: RecordState
    dest: str
    entry: Any
    nbytes: int
    enqueued_at: float
    attempts: int
    error_code: str | None
    error_message: str | None
    request_id: str | None
    dead_at: float | None = None
    original_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        try:
            key = decode_dest(self.dest)
            dest: Any = {
                "project": key.project,
                "logstore": key.logstore,
                "topic": key.topic,
                "source": key.source,
                "tags": [list(t) for t in key.tags],
            }
        except ValueError:
            dest = self.dest
        return {
            "id": self.id,
            "state": str(self.state),
            "dest": dest,
            "entry": self.entry,
            "enqueued_at": self.enqueued_at,
            "attempts": self.attempts,
            "nbytes": self.nbytes,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "request_id": self.request_id,
            "dead_at": self.dead_at,
            "original_id": self.original_id,
        }

    def content(self, key: str) -> str | None:
        """The value of content ``key`` of the entry (None if absent or not a mapped entry)."""
        if isinstance(self.entry, dict):
            for pair in self.entry.get("contents") or ():
                if isinstance(pair, list | tuple) and len(pair) == 2 and pair[0] == key:
                    return str(pair[1])
        return None

    @property
    def log_time(self) -> float:
        """The record's own time (entry ``time`` + ``time_ns``), else when it was spooled."""
        if isinstance(self.entry, dict) and isinstance(self.entry.get("time"), int | float):
            ns = self.entry.get("time_ns")
            return float(self.entry["time"]) + (ns / 1e9 if isinstance(ns, int) else 0.0)
        return self.enqueued_at


def _iter_state(spool: Spool, state: RecordState) -> Iterator[SpooledRecord]:
    after = 0
    if state is RecordState.DEAD:
        while True:
            page = spool.dead_letters(_PAGE, after_id=after)
            for d in page:
                yield SpooledRecord(
                    id=d.id,
                    state=RecordState.DEAD,
                    dest=d.dest,
                    entry=d.entry,
                    nbytes=d.nbytes,
                    enqueued_at=d.enqueued_at,
                    attempts=d.attempts,
                    error_code=d.error_code,
                    error_message=d.message,
                    request_id=d.request_id,
                    dead_at=d.dead_at,
                    original_id=d.original_id,
                )
            if len(page) < _PAGE:
                return
            after = page[-1].id
    while True:
        rows = spool.queued(state, _PAGE, after_id=after)
        for r in rows:
            yield SpooledRecord(
                id=r.id,
                state=r.state,
                dest=r.dest,
                entry=r.entry,
                nbytes=r.nbytes,
                enqueued_at=r.enqueued_at,
                attempts=r.attempts,
                error_code=r.error_code,
                error_message=r.message,
                request_id=r.request_id,
            )
        if len(rows) < _PAGE:
            return
        after = rows[-1].id


@dataclass(frozen=True, slots=True)
class RecordFilter:
    """Which records ``peek``/``export`` show; every given criterion must match."""

    min_level: int | None = None
    logger: str | None = None
    since: float | None = None
    until: float | None = None
    error_code: str | None = None
    level_key: str = _LEVEL_KEY
    logger_key: str = _LOGGER_KEY

    def matches(self, record: SpooledRecord) -> bool:
        if self.error_code is not None and record.error_code != self.error_code:
            return False
        if self.since is not None or self.until is not None:
            t = record.log_time
            if (self.since is not None and t < self.since) or (
                self.until is not None and t > self.until
            ):
                return False
        if self.min_level is not None:
            level = _LEVELS.get((record.content(self.level_key) or "").upper())
            if level is None or level < self.min_level:
                return False
        if self.logger is not None:
            name = record.content(self.logger_key) or ""
            # Logger hierarchy: "app" selects "app" and "app.db", not "apple".
            if name != self.logger and not name.startswith(self.logger + "."):
                return False
        return True


def _select(
    spool: Spool, states: Sequence[RecordState], where: RecordFilter
) -> Iterator[SpooledRecord]:
    for state in states:
        for record in _iter_state(spool, state):
            if where.matches(record):
                yield record


def _make_filter(
    *,
    level: str | None,
    logger: str | None,
    since: str | None,
    until: str | None,
    error_code: str | None,
    level_key: str,
    logger_key: str,
) -> RecordFilter:
    now = time.time()
    min_level = None
    if level is not None:
        if level.upper() in _LEVELS:
            min_level = _LEVELS[level.upper()]
        elif level.isdigit():
            min_level = int(level)
        else:
            raise typer.BadParameter(
                "use DEBUG, INFO, WARNING, ERROR, CRITICAL or a number", param_hint="--level"
            )
    bounds: dict[str, float | None] = {}
    for hint, text in (("--since", since), ("--until", until)):
        try:
            bounds[hint] = None if text is None else parse_when(text, now)
        except typer.BadParameter as exc:
            raise typer.BadParameter(exc.message, param_hint=hint) from None
    return RecordFilter(
        min_level=min_level,
        logger=logger,
        since=bounds["--since"],
        until=bounds["--until"],
        error_code=error_code,
        level_key=level_key,
        logger_key=logger_key,
    )


# ------------------------------------------------------------------------------ options

SpoolArg = Annotated[
    Path, typer.Argument(metavar="SPOOL", help="The spool file.", show_default=False)
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
LevelOpt = Annotated[
    str | None,
    typer.Option(help="Minimum level: DEBUG, INFO, WARNING, ERROR, CRITICAL (or a number)."),
]
LoggerOpt = Annotated[
    str | None, typer.Option(help="Logger name; 'app' also selects 'app.db' (not 'apple').")
]
SinceOpt = Annotated[
    str | None,
    typer.Option(help="Records logged at/after this: ISO time (naive = local) or age (10m, 2h)."),
]
UntilOpt = Annotated[
    str | None, typer.Option(help="Records logged at/before this: ISO time or age (5m).")
]
ErrorCodeOpt = Annotated[
    str | None, typer.Option("--error-code", help="Only records whose last error has this code.")
]
LevelKeyOpt = Annotated[
    str, typer.Option(help="Content key holding the level (set if you renamed fields).")
]
LoggerKeyOpt = Annotated[
    str, typer.Option(help="Content key holding the logger name (set if you renamed fields).")
]


class ExportState(StrEnum):
    """States ``export`` can write."""

    READY = "ready"
    LEASED = "leased"
    DEAD = "dead"
    ALL = "all"


class PurgeState(StrEnum):
    """States ``purge`` can delete."""

    DEAD = "dead"
    ALL = "all"


# ------------------------------------------------------------------------------ status


def _flusher_command(pid: int) -> str:
    """The holder's process name from /proc (best effort: '' when not readable).

    Only ``comm`` (e.g. ``yai-spool``), never the command line: arguments may hold a secret.
    """
    try:
        return Path(f"/proc/{pid}/comm").read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


def _status_json(path: Path, stats: SpoolStats, health: Health, now: float) -> dict[str, Any]:
    error = stats.last_error
    unacked = _unacknowledged(stats)
    outcome = error_outcome(error) if error is not None else None
    pid = stats.flusher_pid
    return {
        "path": str(path),
        "verdict": str(health.verdict),
        "summary": health.summary,
        "findings": [{"verdict": str(f.verdict), "message": f.message} for f in health.findings],
        "notes": list(health.notes),
        "schema_version": stats.schema_version,
        "ready": {"records": stats.ready_records, "bytes": stats.ready_bytes},
        "leased": {
            "records": stats.leased_records,
            "bytes": stats.leased_bytes,
            "leases": stats.active_leases,
        },
        "dead": {"records": stats.dead_records, "bytes": stats.dead_bytes},
        "dropped": dict(stats.dropped),
        "dropped_total": stats.dropped_total,
        "last_drop_at": stats.last_drop_at,
        "disk": {
            "file_bytes": stats.file_bytes,
            "wal_bytes": stats.wal_bytes,
            "total_bytes": stats.file_bytes + stats.wal_bytes,
        },
        "oldest_ready_enqueued_at": stats.oldest_ready_enqueued_at,
        "oldest_ready_age": stats.oldest_ready_age,
        "counters": {
            "appended": stats.appended,
            "delivered": stats.delivered,
            "retried": stats.retried,
            "retry_requests": stats.retry_requests,
            "throttled_requests": stats.throttled_requests,
            "dead_lettered": stats.dead_lettered,
            "replayed": stats.replayed,
            "purged": stats.purged,
            "leases_recovered": stats.leases_recovered,
        },
        "last_success": None
        if stats.last_success_at is None
        else {
            "at": stats.last_success_at,
            "age": now - stats.last_success_at,
            "request_id": stats.last_success_request_id,
        },
        "last_error": None
        if error is None
        else {
            "code": error.code,
            "message": error.message,
            "request_id": error.request_id,
            "at": error.at,
            "age": now - error.at,
            "outcome": None if outcome is None else outcome.value,
        },
        "flusher": None if pid is None else {"pid": pid, "command": _flusher_command(pid)},
        "events": [
            {
                "at": e.at,
                "kind": e.kind,
                "detail": dict(e.detail),
                "acknowledged": e not in unacked,
            }
            for e in stats.events
        ],
    }


def _status_table(doc: dict[str, Any], now: float) -> Table:
    verdict = doc["verdict"]
    color = "green" if verdict == Verdict.OK else "yellow" if verdict == "lagging" else "red"
    table = Table(
        title=f"{escape(doc['path'])} — [{color}]{verdict}[/]",
        title_justify="left",
        show_header=False,
        box=None,
        padding=(0, 1),
    )
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_row("health", escape(doc["summary"]))
    for finding in doc["findings"][1:]:
        table.add_row("", escape(f"also {finding['verdict']}: {finding['message']}"))
    if "ready" not in doc:  # unreadable spool: nothing more to show
        return table
    ready, leased, dead = doc["ready"], doc["leased"], doc["dead"]
    table.add_row(
        "records",
        f"ready {ready['records']:,} ({_size(ready['bytes'])}) · leased {leased['records']:,} "
        f"in {leased['leases']} lease(s) · dead {dead['records']:,} ({_size(dead['bytes'])})",
    )
    oldest = doc["oldest_ready_enqueued_at"]
    table.add_row(
        "oldest ready",
        "-" if oldest is None else f"{format_age(now - oldest)} ago ({_iso(oldest)})",
    )
    dropped = doc["dropped"]
    table.add_row(
        "dropped",
        "none"
        if not dropped
        else ", ".join(f"{k} {v:,}" for k, v in sorted(dropped.items()))
        + f" (total {doc['dropped_total']:,}"
        + (
            f", newest {format_age(now - doc['last_drop_at'])} ago)"
            if doc.get("last_drop_at") is not None
            else ")"
        ),
    )
    disk = doc["disk"]
    table.add_row(
        "on disk",
        f"{_size(disk['total_bytes'])} (file {_size(disk['file_bytes'])} + WAL "
        f"{_size(disk['wal_bytes'])})",
    )
    c = doc["counters"]
    table.add_row(
        "counters",
        f"records: delivered {c['delivered']:,} · retried {c['retried']:,} · "
        f"dead-lettered {c['dead_lettered']:,} · replayed "
        f"{c['replayed']:,} · purged {c['purged']:,} · leases recovered "
        f"{c['leases_recovered']:,}; requests: failed and retried {c['retry_requests']:,} "
        f"· throttled {c['throttled_requests']:,}",
    )
    success = doc["last_success"]
    table.add_row(
        "last success",
        "never"
        if success is None
        else f"{_iso(success['at'])} ({format_age(success['age'])} ago), request id "
        f"{success['request_id'] or '-'}",
    )
    error = doc["last_error"]
    table.add_row(
        "last error",
        "none"
        if error is None
        else escape(
            f"{error['code']}: {error['message'] or '-'} (request id {error['request_id'] or '-'}"
            f", {_iso(error['at'])}, {format_age(error['age'])} ago"
            + (f", {error['outcome']}" if error["outcome"] else "")
            + ")"
        ),
    )
    flusher = doc["flusher"]
    table.add_row(
        "flusher",
        "nobody (no process holds the flusher lock)"
        if flusher is None
        else escape(
            f"pid {flusher['pid']}" + (f" ({flusher['command']})" if flusher["command"] else "")
        ),
    )
    events = doc["events"]
    if not events:
        table.add_row("events", "none")
    for n, event in enumerate(events):
        detail = ", ".join(f"{k}={v}" for k, v in sorted(event["detail"].items()))
        flag = "" if event["acknowledged"] else " [UNACKNOWLEDGED]"
        table.add_row(
            "events" if n == 0 else "",
            escape(f"{_iso(event['at'])} {event['kind']}: {detail}{flag}"),
        )
    for n, note in enumerate(doc["notes"]):
        table.add_row("notes" if n == 0 else "", escape(note))
    return table


def _headline(docs: Sequence[dict[str, Any]], verdict: Verdict) -> str:
    if verdict is Verdict.OK:
        if len(docs) == 1:
            return f"OK: {docs[0]['path']}: {docs[0]['summary']}"
        return f"OK: all {len(docs)} spools are healthy"
    first = max(docs, key=lambda d: Verdict(d["verdict"]).severity)
    line = f"{verdict.upper()}: {first['path']}: {first['summary']}"
    others = sum(1 for d in docs if d["verdict"] != Verdict.OK) - 1
    if others > 0:
        line += f" (+{others} more spool{'s' if others > 1 else ''} with problems below)"
    return line


@_guarded
def status(  # keyword-only: typer passes every parameter by name
    *,
    spools: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Spool files, or directories holding *.spool files (default: the spools of "
            "--config / $YAI_SPOOL_CONFIG, else the handler's default spool directory).",
            show_default=False,
        ),
    ] = None,
    lag_threshold: Annotated[
        str,
        typer.Option(help="Oldest waiting record older than this = lagging (90, 45s, 10m, 2h)."),
    ] = "60s",
    stall_threshold: Annotated[
        str,
        typer.Option(help="A flusher that delivered nothing for this long = stalled."),
    ] = "5m",
    drop_window: Annotated[
        str,
        typer.Option(help="A record dropped less than this long ago = dropping (exit 14)."),
    ] = "5m",
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Report the spools of this daemon config (default: $YAI_SPOOL_CONFIG) when "
            "no SPOOL is given.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Health of spools: what waits, what failed, who ships, and one verdict per spool.

    The first line says what is wrong in plain words (or OK). Verdicts: ok, lagging,
    stalled, no-flusher, blocked-credentials, dropping, corrupt, permission-denied, missing;
    the exit code is the worst spool's. A quarantine is acknowledged by removing the
    <spool>.corrupt-* file it left (after salvaging what you need), a damaged WAL by
    removing its <spool>.wal-damaged-* copy.
    """
    limits: dict[str, float] = {}
    for hint, text in (
        ("--lag-threshold", lag_threshold),
        ("--stall-threshold", stall_threshold),
        ("--drop-window", drop_window),
    ):
        try:
            limits[hint] = parse_duration(text)
        except typer.BadParameter as exc:
            raise typer.BadParameter(exc.message, param_hint=hint) from None
    thresholds = Thresholds(
        lag=limits["--lag-threshold"],
        stall=limits["--stall-threshold"],
        drop_window=limits["--drop-window"],
    )
    docs: list[dict[str, Any]] = []
    paths = list(spools or [])
    if not paths:
        try:
            loaded = _load_config(config)
        except ConfigError as exc:
            raise _Stop(ExitCode.NOT_CONFIGURED, str(exc)) from None
        paths = _config_spools(loaded) if loaded is not None else []
    for path, found_problem in _discover(paths):
        now = time.time()
        problem = found_problem
        if problem is None:
            try:
                spool = _open_readonly(path)
                try:
                    stats = spool.stats()
                finally:
                    spool.close()
            except _Unavailable as exc:
                problem = exc
            except SpoolError as exc:
                problem = _open_error(path, exc)
        if problem is not None:
            health = unreadable(problem.verdict, problem.message)
            docs.append(
                {
                    "path": str(path),
                    "verdict": str(health.verdict),
                    "summary": health.summary,
                    "findings": [{"verdict": str(health.verdict), "message": health.summary}],
                    "notes": [],
                }
            )
            continue
        health = assess(stats, now, thresholds, unacknowledged=_unacknowledged(stats))
        docs.append(_status_json(path, stats, health, now))
    verdict = worst(Verdict(d["verdict"]) for d in docs)
    code = VERDICT_EXIT[verdict]
    if as_json:
        _print_json(
            {
                "verdict": str(verdict),
                "exit_code": int(code),
                "summary": _headline(docs, verdict),
                "spools": docs,
            }
        )
        raise typer.Exit(code)
    console = _out()
    console.print(escape(_headline(docs, verdict)), soft_wrap=True)
    if len(docs) > 1:
        counts = Counter(d["verdict"] for d in docs)
        console.print(
            f"{len(docs)} spools: " + ", ".join(f"{n} {v}" for v, n in counts.most_common()),
            soft_wrap=True,
        )
    now = time.time()
    for doc in docs:
        console.print()
        console.print(_status_table(doc, now))
    raise typer.Exit(code)


# ------------------------------------------------------------------------------ peek / export


def _cut(text: str | None, width: int) -> str:
    if text is None:
        return ""
    text = text.replace("\n", "⏎ ")
    return text if len(text) <= width else text[: width - 1] + "…"


@_guarded
def peek(  # keyword-only: typer passes every parameter by name
    *,
    spool_path: SpoolArg,
    state: Annotated[
        RecordState, typer.Option(help="Which records: ready (waiting), leased (in flight), dead.")
    ] = RecordState.READY,
    level: LevelOpt = None,
    logger: LoggerOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    error_code: ErrorCodeOpt = None,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many records.")] = 20,
    level_key: LevelKeyOpt = _LEVEL_KEY,
    logger_key: LoggerKeyOpt = _LOGGER_KEY,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON lines, one record per line.")
    ] = False,
) -> None:
    """Show records in a spool, oldest first (read-only; safe on a live spool).

    Filters combine (AND). Table values are truncated; --json prints each record in full,
    one JSON object per line: id, state, dest, entry, enqueued_at, attempts, nbytes,
    error_code, error_message, request_id, dead_at, original_id.
    """
    where = _make_filter(
        level=level,
        logger=logger,
        since=since,
        until=until,
        error_code=error_code,
        level_key=level_key,
        logger_key=logger_key,
    )
    spool = _open_readonly(spool_path)
    try:
        shown = []
        for record in _select(spool, [state], where):
            shown.append(record)
            if as_json:
                _print_json(record.to_json())
            if len(shown) >= limit:
                break
    finally:
        spool.close()
    if as_json:
        return
    console = _out()
    if not shown:
        console.print(f"no {state} records match in {escape(str(spool_path))}")
        return
    table = Table(title=f"{len(shown)} {state} record(s) in {escape(str(spool_path))}")
    for name in ("id", "logged", "level", "logger"):
        table.add_column(name, no_wrap=True)
    table.add_column("message", ratio=1, overflow="fold")
    table.add_column("tries", no_wrap=True)
    table.add_column("error", overflow="fold")
    for r in shown:
        error = r.error_code or ""
        if r.dead_at is not None:
            error += f" (dead {format_age(time.time() - r.dead_at)} ago)"
        table.add_row(
            str(r.id),
            _iso(r.log_time),
            escape(_cut(r.content(level_key), 8)),
            escape(_cut(r.content(logger_key), 24)),
            escape(_cut(r.content(_MESSAGE_KEY) or json.dumps(r.entry)[:200], 120)),
            str(r.attempts),
            escape(error),
        )
    console.print(table)


def _open_export_file(path: Path) -> Any:
    # Logs can hold personal data: the export is created 0600 like the spool itself.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    return os.fdopen(fd, "w", encoding="utf-8")


@_guarded
def export(  # keyword-only: typer passes every parameter by name
    *,
    spool_path: SpoolArg,
    state: Annotated[ExportState, typer.Option(help="Which records to write.")] = ExportState.ALL,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write here (created 0600) instead of stdout."),
    ] = None,
    level: LevelOpt = None,
    logger: LoggerOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    error_code: ErrorCodeOpt = None,
    level_key: LevelKeyOpt = _LEVEL_KEY,
    logger_key: LoggerKeyOpt = _LOGGER_KEY,
) -> None:
    """Write records as JSON lines (read-only; safe on a live spool; nothing is removed).

    One object per line: id, state, dest, entry, enqueued_at, attempts, nbytes, error_code,
    error_message, request_id, dead_at, original_id. With -o a progress bar shows on stderr
    and a summary line follows.
    """
    where = _make_filter(
        level=level,
        logger=logger,
        since=since,
        until=until,
        error_code=error_code,
        level_key=level_key,
        logger_key=logger_key,
    )
    states = list(RecordState) if state is ExportState.ALL else [RecordState(state.value)]
    spool = _open_readonly(spool_path)
    written = 0
    try:
        stats = spool.stats()
        total = sum(
            {
                RecordState.READY: stats.ready_records,
                RecordState.LEASED: stats.leased_records,
                RecordState.DEAD: stats.dead_records,
            }[s]
            for s in states
        )
        if output is None:
            for record in _select(spool, states, where):
                _print_json(record.to_json())
                written += 1
            return
        with (
            _open_export_file(output) as sink,
            _progress() as progress,
        ):
            task = progress.add_task("exporting", total=total or None)
            for state_ in states:
                for record in _iter_state(spool, state_):
                    progress.advance(task)
                    if where.matches(record):
                        sink.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")
                        written += 1
    finally:
        spool.close()
    _err().print(f"exported {written:,} record(s) to {escape(str(output))}", soft_wrap=True)


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=_err(),
        transient=False,
    )


# ------------------------------------------------------------------------------ credentials


@dataclass(frozen=True, slots=True)
class _CredentialSource:
    provider: CredentialsProvider
    where: str  # e.g. "environment (ALIBABA_CLOUD_ACCESS_KEY_ID=LTAI****)"; never a secret


def _credential_source() -> _CredentialSource:
    """The daemon's credentials: ``$CREDENTIALS_DIRECTORY`` files, else the environment.

    The same convention as ``yai-spool run`` (``yai_spool.daemon.credentials``), so what the CLI
    sends with (and what doctor checks) is what the service would use.

    Raises:
        ConfigError: none usable (names what to set, never a value).
    """
    # Imported here: only the commands that send need it (it loads the daemon package).
    from yai_spool.daemon.credentials import (  # noqa: PLC0415
        CredentialsDirectoryProvider,
        daemon_credentials,
    )

    provider = daemon_credentials()
    credentials = provider.get_credentials()
    if isinstance(provider, CredentialsDirectoryProvider):
        origin = f"$CREDENTIALS_DIRECTORY {provider.directory}"
    else:
        origin = "environment"
    token = " + security token" if credentials.security_token else ""
    return _CredentialSource(
        provider, f"{origin} (key {mask_key_id(credentials.access_key_id)}{token})"
    )


# ------------------------------------------------------------------------------ replay


def _matching_dead(
    spool: Spool, ids: Sequence[int], error_code: str | None, older_than: float | None
) -> list[SpooledRecord]:
    """The dead letters ``Spool.replay_dead`` would select with the same arguments."""
    wanted = set(ids)
    cutoff = None if older_than is None else time.time() - older_than
    return [
        r
        for r in _iter_state(spool, RecordState.DEAD)
        if (not wanted or r.id in wanted)
        and (error_code is None or r.error_code == error_code)
        and (cutoff is None or (r.dead_at is not None and r.dead_at <= cutoff))
    ]


@dataclass(slots=True)
class _SendReport:
    delivered: int = 0
    dead_again: int = 0
    failure: dict[str, Any] | None = None
    remaining: int = 0


def _send_now(
    spool: Spool,
    endpoint: str,
    source: _CredentialSource,
    project: str | None,
    logstore: str | None,
) -> _SendReport:
    """Ship the records READY now through ShipCycle; stop at the first failed request.

    The caller holds the flusher lock, so no other process leases meanwhile. ShipCycle acks
    only on HTTP 200, releases on retryable/credentials errors and dead-letters only single
    records SLS refuses on their own. Leases are FIFO, so after as many records as were READY
    at the start, those are done: records producers append meanwhile are left to the flusher
    (a busy service would otherwise keep this command running forever).
    """
    from yai_spool.shipping.flusher import FlusherConfig, FlusherStats, ShipCycle  # noqa: PLC0415
    from yai_spool.sls.client import PutLogsClient  # noqa: PLC0415 - only this path sends

    report = _SendReport()
    config = FlusherConfig(project=project, logstore=logstore)
    stats = FlusherStats()
    before = spool.stats()
    total = before.ready_records
    with (
        PutLogsClient(endpoint, credentials_provider=source.provider) as client,
        _progress() as progress,
    ):
        cycle = ShipCycle(spool, client, config, stats)
        task = progress.add_task("shipping to SLS", total=total or None)
        done = 0
        while done < total:
            batch = spool.lease(
                min(config.max_batch_records, total - done),
                config.max_batch_bytes,
                lease_seconds=config.lease_seconds,
            )
            if batch is None:
                break
            delivered, dead = stats.delivered, stats.dead
            outcome = cycle.ship(batch)
            done += len(batch)
            progress.advance(task, len(batch))
            report.delivered += stats.delivered - delivered
            report.dead_again += stats.dead - dead
            if outcome is not Outcome.DELIVERED:
                error = spool.stats().last_error
                report.failure = {
                    "outcome": outcome.value,
                    "code": error.code if error else stats.last_error_code,
                    "message": error.message if error else "",
                    "request_id": error.request_id if error else None,
                }
                break
    after = spool.stats()
    report.remaining = after.ready_records + after.leased_records
    return report


@_guarded
def replay(  # keyword-only: typer passes every parameter by name
    *,
    spool_path: SpoolArg,
    ids: Annotated[
        list[int] | None,
        typer.Option("--id", help="Dead letter id (as 'peek --state dead' shows); repeatable."),
    ] = None,
    error_code: Annotated[
        str | None, typer.Option("--error-code", help="Only dead letters with this error code.")
    ] = None,
    older_than: Annotated[
        str | None, typer.Option(help="Only dead letters dead for at least this long (1h, 2d).")
    ] = None,
    send_now: Annotated[
        bool,
        typer.Option(
            "--send-now",
            help="Then ship the spool right away from this process (needs --endpoint and "
            "credentials in the environment); refused while another flusher runs.",
        ),
    ] = False,
    endpoint: Annotated[
        str | None,
        typer.Option(help="SLS endpoint for --send-now (cn-hangzhou.log.aliyuncs.com, https://…)."),
    ] = None,
    project: Annotated[
        str | None, typer.Option(help="--send-now: override the project stored in the records.")
    ] = None,
    logstore: Annotated[
        str | None, typer.Option(help="--send-now: override the logstore stored in the records.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only print what would happen; change nothing.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Move dead-lettered records back to READY (all of them unless filtered).

    Replayed records go to the tail of the queue with fresh attempts; the running flusher
    ships them. With --send-now this process becomes the flusher for a moment and ships
    every READY record (a progress bar on stderr); a record leaves the spool only when SLS
    answers 200. Filters combine (AND).
    """
    try:
        age = None if older_than is None else parse_duration(older_than)
    except typer.BadParameter as exc:
        raise typer.BadParameter(exc.message, param_hint="--older-than") from None
    source = None
    if send_now:
        if not endpoint:
            raise _Stop(ExitCode.NOT_CONFIGURED, "--send-now needs --endpoint")
        try:
            source = _credential_source()
        except ConfigError as exc:
            raise _Stop(ExitCode.NOT_CONFIGURED, str(exc)) from None
    if dry_run:
        spool = _open_readonly(spool_path)
        try:
            matched = _matching_dead(spool, ids or [], error_code, age)
            stats = spool.stats()
        finally:
            spool.close()
        codes = Counter(r.error_code or "-" for r in matched)
        doc: dict[str, Any] = {
            "dry_run": True,
            "would_replay": len(matched),
            "ids": [r.id for r in matched],
            "by_error_code": dict(codes),
            "ready_now": stats.ready_records,
            "flusher_pid": stats.flusher_pid,
        }
        if send_now:
            doc["would_send"] = stats.ready_records + len(matched)
            doc["credentials"] = source.where if source else None
            doc["refused"] = stats.flusher_pid is not None
        if as_json:
            _print_json(doc)
            return
        out = _out()
        out.print(
            f"dry run: would replay {len(matched):,} dead letter(s) in {escape(str(spool_path))}"
            + (f" ({', '.join(f'{c} {n}' for c, n in codes.most_common())})" if codes else ""),
            soft_wrap=True,
        )
        if send_now:
            if stats.flusher_pid is not None:
                out.print(f"--send-now would be refused: flusher pid {stats.flusher_pid} runs")
            else:
                out.print(
                    f"then ship {doc['would_send']:,} READY record(s) to {escape(endpoint or '')} "
                    f"with credentials from {escape(doc['credentials'] or '-')}",
                    soft_wrap=True,
                )
        return

    spool = _open_writable(spool_path)
    try:
        if send_now and not spool.acquire_flusher():
            raise _Stop(
                ExitCode.REFUSED,
                f"flusher pid {spool.flusher_pid()} is shipping {spool_path}; it will ship "
                "replayed records itself: run 'yai-spool replay' without --send-now",
            )
        replayed = spool.replay_dead(ids or None, error_code=error_code, older_than=age)
        report = None
        if send_now:
            assert endpoint is not None  # checked above
            assert source is not None
            report = _send_now(spool, endpoint, source, project, logstore)
    finally:
        spool.close()  # also releases the flusher lock
    doc = {"replayed": replayed}
    if report is not None:
        doc.update(
            delivered=report.delivered,
            dead_again=report.dead_again,
            remaining=report.remaining,
            failure=report.failure,
        )
    code = ExitCode.SEND_FAILED if report is not None and report.failure else ExitCode.OK
    if as_json:
        _print_json(doc)
        raise typer.Exit(code)
    out = _out()
    out.print(
        f"replayed {replayed:,} dead letter(s) to READY in {escape(str(spool_path))}",
        soft_wrap=True,
    )
    if report is not None:
        out.print(
            f"shipped {report.delivered:,} record(s); {report.dead_again:,} dead-lettered again "
            f"(refused by SLS or past max age); {report.remaining:,} still waiting",
            soft_wrap=True,
        )
        if report.failure:
            f = report.failure
            _err().print(
                escape(
                    f"yai-spool: send failed ({f['outcome']}): {f['code']}: {f['message']} "
                    f"(request id {f['request_id'] or '-'}); the records are kept"
                ),
                soft_wrap=True,
            )
    raise typer.Exit(code)


# ------------------------------------------------------------------------------ purge / vacuum


@_guarded
def purge(  # keyword-only: typer passes every parameter by name
    *,
    spool_path: SpoolArg,
    state: Annotated[
        PurgeState,
        typer.Option(help="dead: the dead letters; all: every record (waiting ones too)."),
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count; delete nothing.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete records for good: the dead letters, or everything.

    Asks for confirmation on a terminal; without a terminal it refuses (exit 10) unless
    --yes is given. Deleted records are counted as 'purged' in the spool's counters.
    """
    if not dry_run:
        _check_writable(spool_path)
    spool = _open_readonly(spool_path)
    try:
        stats = spool.stats()
    finally:
        spool.close()
    count = stats.dead_records
    if state is PurgeState.ALL:
        count += stats.ready_records + stats.leased_records
    what = "dead letter(s)" if state is PurgeState.DEAD else "record(s) (ready, leased and dead)"
    if dry_run:
        if as_json:
            _print_json({"dry_run": True, "would_purge": count, "state": str(state)})
        else:
            _out().print(f"dry run: would delete {count:,} {what} from {escape(str(spool_path))}")
        return
    if not yes:
        if not sys.stdin.isatty():
            raise _Stop(
                ExitCode.REFUSED,
                f"refusing to delete {count:,} {what} without confirmation; add --yes",
            )
        warning = ""
        if state is PurgeState.ALL and stats.flusher_pid is not None:
            warning = f" (flusher pid {stats.flusher_pid} is shipping this spool)"
        if not typer.confirm(
            f"Delete {count:,} {what} from {spool_path} for good{warning}?", err=True
        ):
            raise _Stop(ExitCode.REFUSED, "not confirmed; nothing deleted")
    spool = _open_writable(spool_path)
    try:
        deleted = spool.purge(str(state))
    finally:
        spool.close()
    if as_json:
        _print_json({"purged": deleted, "state": str(state)})
    else:
        _out().print(f"deleted {deleted:,} {what} from {escape(str(spool_path))}")


@_guarded
def vacuum(  # keyword-only: typer passes every parameter by name
    *,
    spool_path: SpoolArg,
    force: Annotated[
        bool,
        typer.Option("--force", help="Vacuum even while another process holds the flusher lock."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Give free space back to the filesystem (SQLite VACUUM, then a WAL truncate).

    VACUUM rewrites the whole file and blocks every writer while it runs: producers wait
    up to their busy timeout (5 s by default) and then drop records (counted as 'busy').
    So it is refused (exit 10) while another process holds the flusher lock, a sign the
    spool is live; this command holds that lock itself while it works. Run it when the
    service is stopped or quiet; --force skips the check.
    """
    spool = _open_writable(spool_path)
    try:
        before = spool.stats()
        if not force and not spool.acquire_flusher():
            raise _Stop(
                ExitCode.REFUSED,
                f"flusher pid {spool.flusher_pid()} is shipping {spool_path}; VACUUM would "
                "block it and every producer. Stop the service first, or use --force",
            )
        with _progress() as progress:
            task = progress.add_task("vacuuming", total=None)
            spool.vacuum()
            # After VACUUM the WAL holds a copy of every page: truncate it so the space goes.
            result = spool.checkpoint("TRUNCATE")
            progress.update(task, total=1, completed=1)
        after = spool.stats()
    finally:
        spool.close()
    old = before.file_bytes + before.wal_bytes
    new = after.file_bytes + after.wal_bytes
    doc = {
        "bytes_before": old,
        "bytes_after": new,
        "reclaimed": max(0, old - new),
        "wal_truncated": not result.busy,
    }
    if as_json:
        _print_json(doc)
        return
    _out().print(
        f"vacuumed {escape(str(spool_path))}: {_size(old)} -> {_size(new)} "
        f"(reclaimed {_size(doc['reclaimed'])})"
        + ("" if not result.busy else "; the WAL could not be truncated (a reader is active)"),
        soft_wrap=True,
    )


# ------------------------------------------------------------------------------ doctor


class CheckStatus(StrEnum):
    """Outcome of one doctor check."""

    PASS = "pass"  # noqa: S105 - a check outcome, not a password
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the doctor's checklist."""

    name: str
    status: CheckStatus
    detail: str


# Doctor thresholds: below _DISK_FAIL free the spool will soon drop records (disk_full); the
# spool's own default bound is 256 MiB, so less than _DISK_WARN free is worth a warning.
_DISK_FAIL: Final = 64 * _MiB
_DISK_WARN: Final = 1024 * _MiB
_SKEW_WARN: Final = 60.0
# SLS refuses requests whose date is more than 15 minutes off (sls-protocol.md §6).
_SKEW_FAIL: Final = 900.0


def _check_spool(path: Path) -> list[Check]:
    name = f"spool {path}"
    checks: list[Check] = []
    try:
        spool = _open_readonly(path)
    except _Unavailable as exc:
        return [Check(f"{name}: opens", CheckStatus.FAIL, exc.message)]
    try:
        stats = spool.stats()
        try:
            problems = spool.quick_check()
        except SpoolError as exc:
            problems = [str(exc)]
    finally:
        spool.close()
    checks.append(Check(f"{name}: opens", CheckStatus.PASS, f"schema {stats.schema_version}"))
    unacked = _unacknowledged(stats)
    if problems != ["ok"]:
        checks.append(
            Check(f"{name}: integrity", CheckStatus.FAIL, "quick_check: " + "; ".join(problems[:3]))
        )
    elif unacked:
        moved = ", ".join(str(e.detail.get("moved_to")) for e in unacked)
        checks.append(
            Check(
                f"{name}: integrity",
                CheckStatus.FAIL,
                f"quick_check ok, but a corrupt file was quarantined to {moved}; salvage it, "
                "then delete it to acknowledge",
            )
        )
    else:
        checks.append(Check(f"{name}: integrity", CheckStatus.PASS, "quick_check ok"))
    health = assess(stats, time.time(), unacknowledged=unacked)
    level = {Verdict.OK: CheckStatus.PASS, Verdict.LAGGING: CheckStatus.WARN}.get(
        health.verdict, CheckStatus.FAIL
    )
    checks.append(Check(f"{name}: health", level, f"{health.verdict}: {health.summary}"))
    checks.append(_check_modes(path))
    checks.append(_check_disk(path.parent))
    return checks


def _check_modes(path: Path) -> Check:
    name = f"spool {path}: permissions"
    bad: list[str] = []
    warn: list[str] = []
    owners: dict[int, list[str]] = {}
    try:
        st = os.stat(path.parent)
    except OSError as exc:
        return Check(name, CheckStatus.FAIL, f"cannot stat {path.parent}: {exc.strerror}")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o022 and not mode & stat.S_ISVTX:
        bad.append(f"directory {path.parent} is {mode:04o}: others may replace the spool")
    elif mode & 0o077 and not mode & stat.S_ISVTX:
        warn.append(f"directory {path.parent} is {mode:04o} (expected 0700)")
    for suffix in ("", "-wal", "-shm", ".flusher.lock", ".open.lock"):
        file = Path(f"{path}{suffix}")
        try:
            fst = os.stat(file)
        except FileNotFoundError:
            continue
        except OSError as exc:
            bad.append(f"cannot stat {file.name}: {exc.strerror}")
            continue
        owners.setdefault(fst.st_uid, []).append(file.name)
        fmode = stat.S_IMODE(fst.st_mode)
        if fmode & 0o077:
            # The spool repairs modes at its next writable open; logs may hold personal data.
            warn.append(f"{file.name} is {fmode:04o} (expected 0600)")
    if len(owners) > 1:
        listing = "; ".join(f"uid {uid}: {', '.join(names)}" for uid, names in owners.items())
        bad.append(f"files have different owners ({listing}); the service must own them all")
    if bad:
        return Check(name, CheckStatus.FAIL, "; ".join(bad + warn))
    if warn:
        return Check(name, CheckStatus.WARN, "; ".join(warn))
    uid = next(iter(owners), st.st_uid)
    return Check(name, CheckStatus.PASS, f"0600 files, {mode:04o} directory, owner uid {uid}")


def _check_disk(directory: Path) -> Check:
    name = f"disk space at {directory}"
    try:
        usage = shutil.disk_usage(directory)
    except OSError as exc:
        return Check(name, CheckStatus.FAIL, f"cannot read: {exc.strerror}")
    free = usage.free
    share = free / usage.total if usage.total else 0.0
    detail = f"{_size(free)} free of {_size(usage.total)} ({share:.0%})"
    if free < _DISK_FAIL:
        return Check(name, CheckStatus.FAIL, detail + "; appends will soon fail (disk_full)")
    if free < _DISK_WARN or share < 0.1:
        return Check(name, CheckStatus.WARN, detail)
    return Check(name, CheckStatus.PASS, detail)


def _server_clock(endpoint: str, project: str, logstore: str) -> tuple[float, float] | None:
    """(server Date, local midpoint) from one unauthenticated GET of the endpoint's root.

    PutLogsClient does not expose response headers yet (requested), so the clock is read from
    a separate request that carries no credentials; any answer (404/401) has a Date header.
    """
    from email.utils import parsedate_to_datetime  # noqa: PLC0415 - only doctor needs these

    import httpx  # noqa: PLC0415

    from yai_spool.sls.request import Destination, Endpoint  # noqa: PLC0415

    dest = Destination(Endpoint.parse(endpoint), project, logstore)
    sent = time.time()
    try:
        with httpx.Client(trust_env=False, timeout=10.0, follow_redirects=False) as client:
            response = client.get(dest.base_url + "/", headers={"Host": dest.host_header})
    except httpx.HTTPError as exc:  # the request carries no credentials: its text is safe
        raise ConnectionError(f"{type(exc).__name__}: {exc}") from exc
    got = time.time()
    date = response.headers.get("date")
    if not date:
        return None
    return parsedate_to_datetime(date).timestamp(), (sent + got) / 2


def _check_endpoint(
    endpoint: str, project: str, logstore: str, source: _CredentialSource | None
) -> list[Check]:
    from yai_spool.sls.client import PutLogsClient  # noqa: PLC0415 - only doctor/replay send
    from yai_spool.sls.model import LogGroup  # noqa: PLC0415

    checks: list[Check] = []
    try:
        clock = _server_clock(endpoint, project, logstore)
    except (ConfigError, OSError) as exc:
        clock = None
        checks.append(Check("clock skew", CheckStatus.FAIL, f"cannot reach {endpoint}: {exc}"))
    else:
        if clock is None:
            checks.append(Check("clock skew", CheckStatus.WARN, "the server sent no Date header"))
        else:
            skew = clock[1] - clock[0]
            detail = f"local clock {skew:+.1f}s vs {endpoint} (Date header, 1 s resolution)"
            level = (
                CheckStatus.FAIL
                if abs(skew) >= _SKEW_FAIL
                else CheckStatus.WARN
                if abs(skew) >= _SKEW_WARN
                else CheckStatus.PASS
            )
            if level is CheckStatus.FAIL:
                detail += "; SLS refuses requests more than 15 min off: fix NTP"
            checks.append(Check("clock skew", level, detail))
    if source is None:
        checks.append(Check("credentials valid", CheckStatus.SKIP, "no credentials to try"))
        return checks
    # The probe: PutLogs with ZERO logs. It is authenticated like any PutLogs, writes nothing,
    # and needs no read permission (GetLogStore would need one a write-only key may lack).
    try:
        with PutLogsClient(endpoint, credentials_provider=source.provider) as client:
            result = client.put_logs(project, logstore, LogGroup(logs=()))
    except SLSError as exc:
        outcome = exc.outcome
        where = f"{project}/{logstore} at {endpoint}"
        if outcome is Outcome.REJECTED:
            # Identity and destination are checked before the body: only the empty probe body
            # was refused, so the credentials work.
            checks.append(
                Check(
                    "credentials valid",
                    CheckStatus.PASS,
                    f"{where} accepted the identity ({exc.error_code} for the empty probe)",
                )
            )
        else:
            checks.append(
                Check(
                    "credentials valid",
                    CheckStatus.FAIL,
                    f"{where}: {exc.error_code}: {exc.message} (request id "
                    f"{exc.request_id or '-'}; {outcome.value})",
                )
            )
    except TransportError as exc:
        checks.append(Check("credentials valid", CheckStatus.FAIL, f"no answer: {exc}"))
    except ConfigError as exc:
        checks.append(Check("credentials valid", CheckStatus.FAIL, str(exc)))
    else:
        checks.append(
            Check(
                "credentials valid",
                CheckStatus.PASS,
                f"PutLogs probe (0 logs) to {project}/{logstore} answered 200 "
                f"(request id {result.request_id})",
            )
        )
    return checks


def _load_config(path: Path | None) -> DaemonConfig | None:
    """The daemon's configuration: ``--config``, else ``$YAI_SPOOL_CONFIG``; None for neither.

    Raises:
        ConfigError: unreadable or invalid (every problem named, never a secret: the file
            holds no credentials by design).
    """
    from yai_spool.daemon.config import ENV_CONFIG, load_daemon_config  # noqa: PLC0415

    if path is None and not os.environ.get(ENV_CONFIG):
        return None
    return load_daemon_config(path)


def _config_spools(config: DaemonConfig) -> list[Path]:
    """The spool files and directories a configuration drains."""
    return [source.path for source in (*config.spools, *config.directories)]


def _config_probes(config: DaemonConfig) -> list[tuple[str, str, str]]:
    """Distinct (endpoint, project, logstore) the configuration names in full."""
    probes: dict[tuple[str, str, str], None] = {}
    for source in (*config.spools, *config.directories):
        dest = source.destination
        if dest.endpoint and dest.project and dest.logstore:
            probes.setdefault((dest.endpoint, dest.project, dest.logstore))
    return list(probes)


@_guarded
def doctor(  # keyword-only: typer passes every parameter by name
    *,
    spools: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Spool files or directories (default: the config's, else the handler's "
            "default spool directory).",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="The daemon's TOML config to validate (default: $YAI_SPOOL_CONFIG); its spools "
            "and destinations are checked when no SPOOL / --endpoint is given.",
        ),
    ] = None,
    endpoint: Annotated[
        str | None,
        typer.Option(help="SLS endpoint to probe (clock skew, credentials)."),
    ] = None,
    project: Annotated[str | None, typer.Option(help="Project for the credentials probe.")] = None,
    logstore: Annotated[
        str | None, typer.Option(help="Logstore for the credentials probe.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check everything a spool needs and print a pass/warn/fail checklist.

    Config: the daemon's TOML validates. Spools: opens read-only, quick_check, health, file
    modes (0600) and directory (0700), one owner, free disk space. Credentials: found where
    'yai-spool run' looks ($CREDENTIALS_DIRECTORY files sls-access-key-id /
    sls-access-key-secret / sls-security-token, else ALIBABA_CLOUD_ACCESS_KEY_ID /
    _SECRET / ALIBABA_CLOUD_SECURITY_TOKEN). Per endpoint/project/logstore (options or
    config): clock skew from the server's Date header and ONE authenticated PutLogs carrying
    zero logs (writes nothing). Secrets are never printed. Exit 0 when nothing failed
    (warnings allowed), 11 otherwise.
    """
    checks: list[Check] = []
    loaded: DaemonConfig | None = None
    try:
        loaded = _load_config(config)
    except ConfigError as exc:
        checks.append(Check(f"config {config or '$YAI_SPOOL_CONFIG'}", CheckStatus.FAIL, str(exc)))
    else:
        if loaded is not None:
            checks.append(
                Check(
                    f"config {loaded.source_file}",
                    CheckStatus.PASS,
                    f"valid: {len(loaded.spools)} spool(s), {len(loaded.directories)} "
                    "director(y/ies)",
                )
            )
    paths = list(spools or []) or (_config_spools(loaded) if loaded is not None else [])
    for path, problem in _discover(paths):
        if problem is not None:
            checks.append(Check(f"spool {path}: opens", CheckStatus.FAIL, problem.message))
        else:
            checks.extend(_check_spool(path))
    source: _CredentialSource | None = None
    try:
        source = _credential_source()
    except ConfigError as exc:
        checks.append(Check("credentials present", CheckStatus.FAIL, str(exc)))
    else:
        checks.append(Check("credentials present", CheckStatus.PASS, source.where))
    if endpoint is not None:
        if project and logstore:
            checks.extend(_check_endpoint(endpoint, project, logstore, source))
        else:
            checks.append(
                Check("endpoint", CheckStatus.FAIL, "--endpoint needs --project and --logstore")
            )
    elif loaded is not None and _config_probes(loaded):
        for probe in _config_probes(loaded):
            checks.extend(_check_endpoint(*probe, source))
    else:
        checks.append(
            Check(
                "endpoint",
                CheckStatus.SKIP,
                "pass --endpoint --project --logstore (or a --config naming them) to probe",
            )
        )
    counts = Counter(c.status for c in checks)
    failed = counts[CheckStatus.FAIL]
    code = ExitCode.CHECKS_FAILED if failed else ExitCode.OK
    headline = (
        f"doctor: {failed} failed, {counts[CheckStatus.WARN]} warning(s), "
        f"{counts[CheckStatus.PASS]} passed"
        + (f", {counts[CheckStatus.SKIP]} skipped" if counts[CheckStatus.SKIP] else "")
    )
    if failed:
        first = next(c for c in checks if c.status is CheckStatus.FAIL)
        # One line, whatever the detail holds (a ConfigError lists one problem per line).
        headline = f"FAIL: {first.name}: {' '.join(first.detail.split())} ({headline})"
    if as_json:
        _print_json(
            {
                "ok": not failed,
                "exit_code": int(code),
                "summary": headline,
                "counts": {s.value: counts[s] for s in CheckStatus},
                "checks": [
                    {"name": c.name, "status": c.status.value, "detail": c.detail} for c in checks
                ],
            }
        )
        raise typer.Exit(code)
    console = _out()
    console.print(escape(headline), soft_wrap=True)
    styles = {
        CheckStatus.PASS: "green",
        CheckStatus.WARN: "yellow",
        CheckStatus.FAIL: "red",
        CheckStatus.SKIP: "dim",
    }
    for c in checks:
        console.print(
            f"[{styles[c.status]}]{c.status.value.upper():4}[/] {escape(c.name)}: "
            f"{escape(c.detail)}",
            soft_wrap=True,
        )
    raise typer.Exit(code)


# ------------------------------------------------------------------------------ registration


_COMMON: Final = (ExitCode.OK, ExitCode.ERROR, ExitCode.USAGE)
_UNUSABLE: Final = (ExitCode.CORRUPT, ExitCode.PERMISSION_DENIED, ExitCode.MISSING)
# The exit codes each command can end with, as its --help lists them.
_COMMAND_EXITS: Final[dict[str, tuple[ExitCode, ...]]] = {
    "status": (*_COMMON, *(VERDICT_EXIT[v] for v in Verdict if v is not Verdict.OK)),
    "peek": (*_COMMON, *_UNUSABLE),
    "export": (*_COMMON, *_UNUSABLE),
    "replay": (
        *_COMMON,
        *_UNUSABLE,
        ExitCode.REFUSED,
        ExitCode.SEND_FAILED,
        ExitCode.NOT_CONFIGURED,
    ),
    "purge": (*_COMMON, *_UNUSABLE, ExitCode.REFUSED),
    "vacuum": (*_COMMON, *_UNUSABLE, ExitCode.REFUSED),
    "doctor": (*_COMMON, ExitCode.CHECKS_FAILED),
}


def _help_text(doc: str | None) -> str:
    """A docstring as typer's rich help wants it: one line per paragraph, markup escaped."""
    paragraphs = inspect.cleandoc(doc or "").split("\n\n")
    return "\n\n".join(escape(" ".join(p.split())) for p in paragraphs)


def _epilog(name: str) -> str:
    meanings = dict(EXIT_CODES)
    lines = [f"{int(code):>2}  {meanings[code]}" for code in _COMMAND_EXITS[name]]
    return "\n".join(["Exit codes:", *lines])


def register_spool_commands(app: typer.Typer) -> None:
    """Add the spool commands to the ``yai-spool`` app (called once by ``yai_spool/cli.py``)."""
    for name, command in (
        ("status", status),
        ("peek", peek),
        ("replay", replay),
        ("export", export),
        ("purge", purge),
        ("vacuum", vacuum),
        ("doctor", doctor),
    ):
        app.command(name, help=_help_text(command.__doc__), epilog=_epilog(name))(command)
