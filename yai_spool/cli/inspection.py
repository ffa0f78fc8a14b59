"""``yai-spool peek`` and ``yai-spool export``: reading records out of a spool.

Owns both commands and their renderings: ``peek`` shows a few records as a table (values cut
to fit) or as JSON lines in full; ``export`` writes every matching record as JSON lines to
stdout or to a file it creates 0600 (logs may hold personal data), with a progress bar on
stderr.

Invariants: read-only (``Spool.open_readonly``), safe on a live spool; nothing is removed;
one JSON object per line, the shape of :meth:`~yai_spool.cli.records.SpooledRecord.to_json`.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from yai_spool.cli.common import (
    SpoolArg,
    SpoolCommand,
    err_console,
    guarded,
    iso_time,
    open_readonly,
    out_console,
    print_json,
    progress_bar,
)
from yai_spool.cli.exit_codes import COMMON_EXITS, UNUSABLE_EXITS
from yai_spool.cli.records import (
    LEVEL_KEY,
    LOGGER_KEY,
    MESSAGE_KEY,
    ErrorCodeOpt,
    ExportState,
    LevelKeyOpt,
    LevelOpt,
    LoggerKeyOpt,
    LoggerOpt,
    SinceOpt,
    UntilOpt,
    chosen_states,
    count_in,
    iter_state,
    make_filter,
    select_records,
)
from yai_spool.ops.health import format_age
from yai_spool.spool import RecordState

__all__ = ["EXPORT", "PEEK", "ExportState", "export", "peek"]


def _cut(text: str | None, width: int) -> str:
    if text is None:
        return ""
    text = text.replace("\n", "⏎ ")
    return text if len(text) <= width else text[: width - 1] + "…"


@guarded
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
    level_key: LevelKeyOpt = LEVEL_KEY,
    logger_key: LoggerKeyOpt = LOGGER_KEY,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON lines, one record per line.")
    ] = False,
) -> None:
    """Show records in a spool, oldest first (read-only; safe on a live spool).

    Filters combine (AND). Table values are truncated; --json prints each record in full,
    one JSON object per line: id, state, dest, entry, enqueued_at, attempts, nbytes,
    error_code, error_message, request_id, dead_at, original_id.
    """
    where = make_filter(
        level, logger, since, until, error_code, level_key=level_key, logger_key=logger_key
    )
    spool = open_readonly(spool_path)
    try:
        shown = []
        for record in select_records(spool, [state], where):
            shown.append(record)
            if as_json:
                print_json(record.to_json())
            if len(shown) >= limit:
                break
    finally:
        spool.close()
    if as_json:
        return
    console = out_console()
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
        error = r.row.error_code or ""
        if r.dead_at is not None:
            error += f" (dead {format_age(time.time() - r.dead_at)} ago)"
        table.add_row(
            str(r.row.id),
            iso_time(r.log_time),
            escape(_cut(r.content(level_key), 8)),
            escape(_cut(r.content(logger_key), 24)),
            escape(_cut(r.content(MESSAGE_KEY) or json.dumps(r.row.entry)[:200], 120)),
            str(r.row.attempts),
            escape(error),
        )
    console.print(table)


def _open_export_file(path: Path) -> Any:
    # Logs can hold personal data: the export is created 0600 like the spool itself.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    return os.fdopen(fd, "w", encoding="utf-8")


@guarded
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
    level_key: LevelKeyOpt = LEVEL_KEY,
    logger_key: LoggerKeyOpt = LOGGER_KEY,
) -> None:
    """Write records as JSON lines (read-only; safe on a live spool; nothing is removed).

    One object per line: id, state, dest, entry, enqueued_at, attempts, nbytes, error_code,
    error_message, request_id, dead_at, original_id. With -o a progress bar shows on stderr
    and a summary line follows.
    """
    where = make_filter(
        level, logger, since, until, error_code, level_key=level_key, logger_key=logger_key
    )
    states = chosen_states(state)
    spool = open_readonly(spool_path)
    written = 0
    try:
        total = count_in(spool.stats(), states)
        if output is None:
            for record in select_records(spool, states, where):
                print_json(record.to_json())
                written += 1
            return
        with (
            _open_export_file(output) as sink,
            progress_bar() as progress,
        ):
            task = progress.add_task("exporting", total=total or None)
            for state_ in states:
                for record in iter_state(spool, state_):
                    progress.advance(task)
                    if where.matches(record):
                        sink.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")
                        written += 1
    finally:
        spool.close()
    err_console().print(f"exported {written:,} record(s) to {escape(str(output))}", soft_wrap=True)


PEEK = SpoolCommand("peek", peek, (*COMMON_EXITS, *UNUSABLE_EXITS))
EXPORT = SpoolCommand("export", export, (*COMMON_EXITS, *UNUSABLE_EXITS))
