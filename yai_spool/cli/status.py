"""``yai-spool status``: one verdict per spool, and what it rests on.

Owns the command, the JSON document it prints (``--json``: one document for all spools) and
its text rendering (a headline naming the worst problem in plain words, then one table per
spool). The verdict itself is :mod:`yai_spool.ops.health`; the exit code is the worst spool's
(:data:`~yai_spool.cli.exit_codes.VERDICT_EXIT`).

Invariants: spools are opened read-only (safe on a live spool); an unreadable spool is a
verdict of its own, never an error that hides the others; the flusher is named by its
``/proc/PID/comm`` only, never its command line (arguments may hold a secret).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from yai_spool.cli.common import (
    JsonOpt,
    SpoolCommand,
    Stop,
    Unavailable,
    config_option,
    config_spools,
    discover,
    find_config,
    guarded,
    iso_time,
    open_error,
    open_readonly,
    out_console,
    parse_duration,
    print_json,
    size_text,
    spools_argument,
    unacknowledged,
)
from yai_spool.cli.exit_codes import COMMON_EXITS, VERDICT_EXIT, ExitCode
from yai_spool.ops.health import (
    Health,
    Thresholds,
    Verdict,
    assess,
    error_outcome,
    format_age,
    unreadable,
    worst,
)
from yai_spool.sls.errors import ConfigError
from yai_spool.spool import SpoolError, SpoolStats

__all__ = ["STATUS", "status"]


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
    unacked = unacknowledged(stats)
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
        f"ready {ready['records']:,} ({size_text(ready['bytes'])}) · leased {leased['records']:,} "
        f"in {leased['leases']} lease(s) · dead {dead['records']:,} ({size_text(dead['bytes'])})",
    )
    oldest = doc["oldest_ready_enqueued_at"]
    table.add_row(
        "oldest ready",
        "-" if oldest is None else f"{format_age(now - oldest)} ago ({iso_time(oldest)})",
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
        f"{size_text(disk['total_bytes'])} (file {size_text(disk['file_bytes'])} + WAL "
        f"{size_text(disk['wal_bytes'])})",
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
        else f"{iso_time(success['at'])} ({format_age(success['age'])} ago), request id "
        f"{success['request_id'] or '-'}",
    )
    error = doc["last_error"]
    table.add_row(
        "last error",
        "none"
        if error is None
        else escape(
            f"{error['code']}: {error['message'] or '-'} (request id {error['request_id'] or '-'}"
            f", {iso_time(error['at'])}, {format_age(error['age'])} ago"
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
            escape(f"{iso_time(event['at'])} {event['kind']}: {detail}{flag}"),
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


_SPOOLS_HELP = (
    "Spool files, or directories holding *.spool files (default: the spools of "
    "--config / $YAI_SPOOL_CONFIG, else the handler's default spool directory)."
)
_CONFIG_HELP = (
    "Report the spools of this daemon config (default: $YAI_SPOOL_CONFIG) when no SPOOL is given."
)


@guarded
def status(  # keyword-only: typer passes every parameter by name
    *,
    spools: Annotated[list[Path] | None, spools_argument(_SPOOLS_HELP)] = None,
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
    config: Annotated[Path | None, config_option(_CONFIG_HELP)] = None,
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
            loaded = find_config(config)
        except ConfigError as exc:
            raise Stop(ExitCode.NOT_CONFIGURED, str(exc)) from None
        paths = config_spools(loaded) if loaded is not None else []
    for path, found_problem in discover(paths):
        now = time.time()
        problem = found_problem
        if problem is None:
            try:
                spool = open_readonly(path)
                try:
                    stats = spool.stats()
                finally:
                    spool.close()
            except Unavailable as exc:
                problem = exc
            except SpoolError as exc:
                problem = open_error(path, exc)
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
        health = assess(stats, now, thresholds, unacknowledged=unacknowledged(stats))
        docs.append(_status_json(path, stats, health, now))
    verdict = worst(Verdict(d["verdict"]) for d in docs)
    code = VERDICT_EXIT[verdict]
    if as_json:
        print_json(
            {
                "verdict": str(verdict),
                "exit_code": int(code),
                "summary": _headline(docs, verdict),
                "spools": docs,
            }
        )
        raise typer.Exit(code)
    console = out_console()
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


STATUS = SpoolCommand(
    "status", status, (*COMMON_EXITS, *(VERDICT_EXIT[v] for v in Verdict if v is not Verdict.OK))
)
