"""Records as the CLI reads them: one shape for every state, and the filters that pick them.

Owns :class:`SpooledRecord` (a READY, LEASED or DEAD record, with its JSON form),
:func:`iter_state` (paged reads through ``Spool.queued`` / ``Spool.dead_letters``),
:class:`ExportState` / :class:`PurgeState` (the ``--state`` choices beyond one state),
:func:`chosen_states` / :func:`count_in` (what a ``--state`` choice selects and counts),
:class:`RecordFilter` / :func:`make_filter` (level, logger, time, error code) and the typer
options those filters are built from (``peek`` and ``export`` share them).

Invariants: nothing here knows the spool's SQL schema; every page is its own short read on a
read-only handle, never one long snapshot of a live spool.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Final

import typer

from yai_spool.cli.common import parse_when
from yai_spool.spool import DeadLetter, QueuedRecord, RecordState, Spool, SpoolStats
from yai_spool.spool.destination import decode_dest

__all__ = [
    "LEVEL_KEY",
    "LOGGER_KEY",
    "MESSAGE_KEY",
    "ErrorCodeOpt",
    "ExportState",
    "LevelKeyOpt",
    "LevelOpt",
    "LoggerKeyOpt",
    "LoggerOpt",
    "PurgeState",
    "RecordFilter",
    "SinceOpt",
    "SpooledRecord",
    "UntilOpt",
    "chosen_states",
    "count_in",
    "iter_state",
    "make_filter",
    "select_records",
]

# Keys the record mapper writes by default (yai_spool.handlers.mapping: LogFields.level /
# record_name).
LEVEL_KEY: Final = "levelname"
LOGGER_KEY: Final = "name"
MESSAGE_KEY: Final = "message"
_LEVELS: Final = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "WARN": 30, "ERROR": 40, "CRITICAL": 50}

_PAGE: Final = 500  # rows per read: each page is its own short read, never a long snapshot


@dataclass(frozen=True, slots=True)
class SpooledRecord:
    """One record as the CLI shows and exports it, whatever its state.

    It wraps the spool's own row (a ``Spool.queued`` row or a ``Spool.dead_letters`` entry)
    rather than copying its fields: the two row types share ``id``, ``dest``, ``entry``,
    ``nbytes``, ``enqueued_at``, ``attempts``, ``error_code``, ``message`` and
    ``request_id``; only the state and the dead-letter fields differ, and those are the
    properties here.
    """

    row: QueuedRecord | DeadLetter

    @classmethod
    def of(cls, row: QueuedRecord | DeadLetter) -> SpooledRecord:
        """The record a ``Spool.queued`` row or a ``Spool.dead_letters`` entry describes."""
        return cls(row)

    @property
    def state(self) -> RecordState:
        return RecordState.DEAD if isinstance(self.row, DeadLetter) else self.row.state

    @property
    def dead_at(self) -> float | None:
        """When the record became a dead letter (None while it is READY or LEASED)."""
        return self.row.dead_at if isinstance(self.row, DeadLetter) else None

    def to_json(self) -> dict[str, Any]:
        row = self.row
        try:
            key = decode_dest(row.dest)
            dest: Any = {
                "project": key.project,
                "logstore": key.logstore,
                "topic": key.topic,
                "source": key.source,
                "tags": [list(t) for t in key.tags],
            }
        except ValueError:
            dest = row.dest
        return {
            "id": row.id,
            "state": str(self.state),
            "dest": dest,
            "entry": row.entry,
            "enqueued_at": row.enqueued_at,
            "attempts": row.attempts,
            "nbytes": row.nbytes,
            "error_code": row.error_code,
            "error_message": row.message,
            "request_id": row.request_id,
            "dead_at": self.dead_at,
            "original_id": row.original_id if isinstance(row, DeadLetter) else None,
        }

    def content(self, key: str) -> str | None:
        """The value of content ``key`` of the entry (None if absent or not a mapped entry)."""
        entry = self.row.entry
        if isinstance(entry, dict):
            for pair in entry.get("contents") or ():
                if isinstance(pair, list | tuple) and len(pair) == 2 and pair[0] == key:
                    return str(pair[1])
        return None

    @property
    def log_time(self) -> float:
        """The record's own time (entry ``time`` + ``time_ns``), else when it was spooled."""
        entry = self.row.entry
        if isinstance(entry, dict) and isinstance(entry.get("time"), int | float):
            ns = entry.get("time_ns")
            return float(entry["time"]) + (ns / 1e9 if isinstance(ns, int) else 0.0)
        return self.row.enqueued_at


def iter_state(spool: Spool, state: RecordState) -> Iterator[SpooledRecord]:
    """Every record in ``state``, oldest first, one page (one short read) at a time."""
    after = 0
    while True:
        page: Sequence[QueuedRecord | DeadLetter] = (
            spool.dead_letters(_PAGE, after_id=after)
            if state is RecordState.DEAD
            else spool.queued(state, _PAGE, after_id=after)
        )
        yield from map(SpooledRecord.of, page)
        if len(page) < _PAGE:
            return
        after = page[-1].id


@dataclass(frozen=True, slots=True)
class RecordFilter:
    """Which records ``peek``/``export`` show; every given criterion must match."""

    min_level: int | None = None
    logger: str | None = None
    since: float | None = None
    until: float | None = None
    error_code: str | None = None
    level_key: str = LEVEL_KEY
    logger_key: str = LOGGER_KEY

    def matches(self, record: SpooledRecord) -> bool:
        if self.error_code is not None and record.row.error_code != self.error_code:
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


class ExportState(StrEnum):
    """The ``--state`` choices of ``export``: the states it can write."""

    READY = "ready"
    LEASED = "leased"
    DEAD = "dead"
    ALL = "all"


class PurgeState(StrEnum):
    """The ``--state`` choices of ``purge``: the states it can delete."""

    DEAD = "dead"
    ALL = "all"


def chosen_states(choice: str) -> list[RecordState]:
    """The states a ``--state`` choice names: that one state, or every state for ``all``."""
    return list(RecordState) if choice == "all" else [RecordState(choice)]


def count_in(stats: SpoolStats, states: Iterable[RecordState]) -> int:
    """How many records ``stats`` counts in ``states`` (no read of the records themselves)."""
    per_state = {
        RecordState.READY: stats.ready_records,
        RecordState.LEASED: stats.leased_records,
        RecordState.DEAD: stats.dead_records,
    }
    return sum(per_state[s] for s in states)


def select_records(
    spool: Spool, states: Sequence[RecordState], where: RecordFilter
) -> Iterator[SpooledRecord]:
    """The records in ``states`` (in that order) that ``where`` matches."""
    for state in states:
        for record in iter_state(spool, state):
            if where.matches(record):
                yield record


def make_filter(
    level: str | None,
    logger: str | None,
    since: str | None,
    until: str | None,
    error_code: str | None,
    /,
    *,
    level_key: str,
    logger_key: str,
) -> RecordFilter:
    """The filter the ``--level/--logger/--since/--until/--error-code`` options describe.

    Raises:
        typer.BadParameter: a level or time that does not parse, naming its option.
    """
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


# ------------------------------------------------------------------------------ filter options

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
