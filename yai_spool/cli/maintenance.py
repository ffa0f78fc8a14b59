"""``yai-spool purge`` and ``yai-spool vacuum``: the two commands that take space back.

Owns both commands. ``purge`` deletes the dead letters (or every record) for good, after a
confirmation on a terminal or ``--yes``; ``vacuum`` rewrites the file (SQLite VACUUM) and
truncates the WAL.

Invariants: both open the spool for writing only through the ``Spool`` API (each call one
transaction), never create a missing spool and refuse root on another user's spool
(:func:`~yai_spool.cli.common.open_writable`). Without a terminal ``purge`` refuses (exit 10)
unless ``--yes`` is given. ``vacuum`` holds the flusher lock while it works and is refused
while another process holds it (VACUUM blocks every writer: producers would drop records as
``busy``); ``--force`` skips that check.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.markup import escape

from yai_spool.cli.common import (
    JsonOpt,
    SpoolArg,
    SpoolCommand,
    Stop,
    check_writable,
    guarded,
    open_readonly,
    open_writable,
    out_console,
    print_json,
    progress_bar,
    size_text,
)
from yai_spool.cli.exit_codes import COMMON_EXITS, UNUSABLE_EXITS, ExitCode
from yai_spool.cli.records import PurgeState, chosen_states, count_in

__all__ = ["PURGE", "VACUUM", "PurgeState", "purge", "vacuum"]


@guarded
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
        check_writable(spool_path)
    spool = open_readonly(spool_path)
    try:
        stats = spool.stats()
    finally:
        spool.close()
    count = count_in(stats, chosen_states(state))
    what = "dead letter(s)" if state is PurgeState.DEAD else "record(s) (ready, leased and dead)"
    if dry_run:
        if as_json:
            print_json({"dry_run": True, "would_purge": count, "state": str(state)})
        else:
            out_console().print(
                f"dry run: would delete {count:,} {what} from {escape(str(spool_path))}"
            )
        return
    if not yes:
        if not sys.stdin.isatty():
            raise Stop(
                ExitCode.REFUSED,
                f"refusing to delete {count:,} {what} without confirmation; add --yes",
            )
        warning = ""
        if state is PurgeState.ALL and stats.flusher_pid is not None:
            warning = f" (flusher pid {stats.flusher_pid} is shipping this spool)"
        if not typer.confirm(
            f"Delete {count:,} {what} from {spool_path} for good{warning}?", err=True
        ):
            raise Stop(ExitCode.REFUSED, "not confirmed; nothing deleted")
    spool = open_writable(spool_path)
    try:
        deleted = spool.purge(str(state))
    finally:
        spool.close()
    if as_json:
        print_json({"purged": deleted, "state": str(state)})
    else:
        out_console().print(f"deleted {deleted:,} {what} from {escape(str(spool_path))}")


@guarded
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
    spool = open_writable(spool_path)
    try:
        before = spool.stats()
        if not force and not spool.acquire_flusher():
            raise Stop(
                ExitCode.REFUSED,
                f"flusher pid {spool.flusher_pid()} is shipping {spool_path}; VACUUM would "
                "block it and every producer. Stop the service first, or use --force",
            )
        with progress_bar() as progress:
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
        print_json(doc)
        return
    out_console().print(
        f"vacuumed {escape(str(spool_path))}: {size_text(old)} -> {size_text(new)} "
        f"(reclaimed {size_text(doc['reclaimed'])})"
        + ("" if not result.busy else "; the WAL could not be truncated (a reader is active)"),
        soft_wrap=True,
    )


PURGE = SpoolCommand("purge", purge, (*COMMON_EXITS, *UNUSABLE_EXITS, ExitCode.REFUSED))
VACUUM = SpoolCommand("vacuum", vacuum, (*COMMON_EXITS, *UNUSABLE_EXITS, ExitCode.REFUSED))
