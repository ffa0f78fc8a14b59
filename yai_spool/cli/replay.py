"""``yai-spool replay``: dead letters back to READY, and optionally shipped right away.

Owns the command, the selection it shares with ``Spool.replay_dead`` (``--id``,
``--error-code``, ``--older-than``; shown by ``--dry-run``) and ``--send-now``, which makes
this process the spool's flusher for one pass over the records READY at its start.

Invariants: ``--send-now`` holds the flusher lock for its duration and is refused while
another process holds it (a second shipper would only compete for leases); records leave the
spool only when SLS answers 200 (every batch is settled through ``flusher.ShipCycle``); the
credentials are the daemon's (:func:`~yai_spool.cli.common.credential_source`), never printed.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.markup import escape

from yai_spool.cli.common import (
    CredentialSource,
    JsonOpt,
    SpoolArg,
    SpoolCommand,
    Stop,
    credential_source,
    err_console,
    guarded,
    open_readonly,
    open_writable,
    out_console,
    parse_duration,
    print_json,
    progress_bar,
)
from yai_spool.cli.exit_codes import COMMON_EXITS, UNUSABLE_EXITS, ExitCode
from yai_spool.cli.records import SpooledRecord, iter_state
from yai_spool.sls.errors import ConfigError, Outcome
from yai_spool.spool import RecordState, Spool

__all__ = ["REPLAY", "replay"]


def _matching_dead(
    spool: Spool, ids: Sequence[int], error_code: str | None, older_than: float | None
) -> list[SpooledRecord]:
    """The dead letters ``Spool.replay_dead`` would select with the same arguments."""
    wanted = set(ids)
    cutoff = None if older_than is None else time.time() - older_than
    return [
        r
        for r in iter_state(spool, RecordState.DEAD)
        if (not wanted or r.row.id in wanted)
        and (error_code is None or r.row.error_code == error_code)
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
    source: CredentialSource,
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
    from yai_spool.shipping.config import FlusherConfig, FlusherStats  # noqa: PLC0415
    from yai_spool.shipping.cycle import ShipCycle  # noqa: PLC0415
    from yai_spool.sls.client import PutLogsClient  # noqa: PLC0415 - only this path sends

    report = _SendReport()
    config = FlusherConfig(project=project, logstore=logstore)
    stats = FlusherStats()
    before = spool.stats()
    total = before.ready_records
    with (
        PutLogsClient(endpoint, credentials_provider=source.provider) as client,
        progress_bar() as progress,
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


@guarded
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
            raise Stop(ExitCode.NOT_CONFIGURED, "--send-now needs --endpoint")
        try:
            source = credential_source()
        except ConfigError as exc:
            raise Stop(ExitCode.NOT_CONFIGURED, str(exc)) from None
    if dry_run:
        spool = open_readonly(spool_path)
        try:
            matched = _matching_dead(spool, ids or [], error_code, age)
            stats = spool.stats()
        finally:
            spool.close()
        codes = Counter(r.row.error_code or "-" for r in matched)
        doc: dict[str, Any] = {
            "dry_run": True,
            "would_replay": len(matched),
            "ids": [r.row.id for r in matched],
            "by_error_code": dict(codes),
            "ready_now": stats.ready_records,
            "flusher_pid": stats.flusher_pid,
        }
        if send_now:
            doc["would_send"] = stats.ready_records + len(matched)
            doc["credentials"] = source.where if source else None
            doc["refused"] = stats.flusher_pid is not None
        if as_json:
            print_json(doc)
            return
        out = out_console()
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

    spool = open_writable(spool_path)
    try:
        if send_now and not spool.acquire_flusher():
            raise Stop(
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
        print_json(doc)
        raise typer.Exit(code)
    out = out_console()
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
            err_console().print(
                escape(
                    f"yai-spool: send failed ({f['outcome']}): {f['code']}: {f['message']} "
                    f"(request id {f['request_id'] or '-'}); the records are kept"
                ),
                soft_wrap=True,
            )
    raise typer.Exit(code)


REPLAY = SpoolCommand(
    "replay",
    replay,
    (
        *COMMON_EXITS,
        *UNUSABLE_EXITS,
        ExitCode.REFUSED,
        ExitCode.SEND_FAILED,
        ExitCode.NOT_CONFIGURED,
    ),
)
