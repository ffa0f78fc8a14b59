"""``yai-spool replay``: dead letters back to READY, and ``--send-now`` through the emulator."""

from __future__ import annotations

from pathlib import Path

from cli_support import (
    LOGSTORE,
    PROJECT,
    WRONG_SECRET,
    append,
    cli_env,
    entry,
    make_dead,
    run_cli,
    stats,
)

from yai_spool.cli.spool_commands import ExitCode
from yai_spool.emulator import Emulator
from yai_spool.sls.errors import ErrorCode
from yai_spool.spool import Spool


def _dead_spool(path: Path) -> None:
    make_dead(path, [entry("key a"), entry("key b")], code=ErrorCode.InvalidKey, age=7200)
    make_dead(path, [entry("body c")], code=ErrorCode.PostBodyInvalid)


def test_dry_run_then_selective_replay(spool_dir: Path) -> None:
    path = spool_dir / "app.spool"
    _dead_spool(path)

    dry = run_cli("replay", path, "--error-code", "InvalidKey", "--dry-run", "--json")
    assert dry.code == ExitCode.OK
    plan = dry.json()
    assert plan["would_replay"] == 2
    assert plan["by_error_code"] == {ErrorCode.InvalidKey: 2}
    assert stats(path).dead_records == 3  # a dry run changes nothing

    old = run_cli("replay", path, "--older-than", "1h", "--json")  # dead for 2 h: the two keys
    assert old.code == ExitCode.OK
    assert old.json() == {"replayed": 2}
    by_id = run_cli("replay", path, "--id", "999", "--json")  # no such dead letter
    assert by_id.json() == {"replayed": 0}

    after = stats(path)
    assert (after.ready_records, after.dead_records, after.replayed) == (2, 1, 2)
    ready = run_cli("peek", path, "--json").json_lines()
    assert [dict(r["entry"]["contents"])["message"] for r in ready] == ["key a", "key b"]
    assert all(r["attempts"] == 0 for r in ready)  # a fresh start at the tail


def test_round_trip_dead_ready_shipped_with_send_now(spool_dir: Path, emu: Emulator) -> None:
    path = spool_dir / "app.spool"
    _dead_spool(path)

    plain = run_cli("replay", path, "--id", "1")  # dead -> ready, shipped by whoever flushes
    assert plain.code == ExitCode.OK
    assert plain.first_line == f"replayed 1 dead letter(s) to READY in {path}"
    assert stats(path).ready_records == 1

    sent = run_cli("replay", path, "--send-now", "--endpoint", emu.url, "--json")
    assert sent.code == ExitCode.OK, sent.stderr
    assert sent.json() == {
        "replayed": 2,
        "delivered": 3,
        "dead_again": 0,
        "remaining": 0,
        "failure": None,
    }
    stored = sorted(dict(log.contents)["message"] for log in emu.logs(PROJECT, LOGSTORE))
    assert stored == [b"body c", b"key a", b"key b"]
    final = stats(path)
    assert final.total_records == 0
    assert final.delivered == 3
    assert final.flusher_pid is None  # the lock was given back


def test_send_now_failure_keeps_every_record(spool_dir: Path, emu: Emulator) -> None:
    path = spool_dir / "app.spool"
    _dead_spool(path)
    emu.faults.fail_next(1, error_code=ErrorCode.ServerBusy)

    result = run_cli("replay", path, "--send-now", "--endpoint", emu.url)
    assert result.code == ExitCode.SEND_FAILED
    assert "send failed (retry): ServerBusy" in result.stderr
    assert "the records are kept" in result.stderr
    after = stats(path)
    assert (after.ready_records, after.dead_records) == (3, 0)
    assert after.last_error is not None
    assert after.last_error.code == ErrorCode.ServerBusy

    refused = run_cli(
        "replay",
        path,
        "--send-now",
        "--endpoint",
        emu.url,
        "--json",
        env=cli_env(secret=WRONG_SECRET),
    )
    assert refused.code == ExitCode.SEND_FAILED
    assert refused.json()["failure"]["code"] == ErrorCode.SignatureNotMatch
    assert refused.json()["failure"]["outcome"] == "credentials"
    assert stats(path).ready_records == 3
    assert emu.count(PROJECT, LOGSTORE) == 0


def test_send_now_refusals_change_nothing(spool_dir: Path, emu: Emulator) -> None:
    path = spool_dir / "app.spool"
    _dead_spool(path)
    append(path, [entry("waiting")])

    no_credentials = run_cli(
        "replay", path, "--send-now", "--endpoint", emu.url, env=cli_env(credentials=False)
    )
    assert no_credentials.code == ExitCode.NOT_CONFIGURED
    assert "ALIBABA_CLOUD_ACCESS_KEY_ID" in no_credentials.stderr
    no_endpoint = run_cli("replay", path, "--send-now")
    assert no_endpoint.code == ExitCode.NOT_CONFIGURED

    with Spool(path) as flusher:
        assert flusher.acquire_flusher()  # another flusher is running
        busy = run_cli("replay", path, "--send-now", "--endpoint", emu.url)
    assert busy.code == ExitCode.REFUSED
    assert "without --send-now" in busy.stderr
    after = stats(path)
    assert (after.ready_records, after.dead_records) == (1, 3)
    assert emu.requests() == []
