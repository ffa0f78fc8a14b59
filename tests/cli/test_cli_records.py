"""``yai-spool peek`` and ``export``: records in every state, filters, tables and JSON lines."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

from cli_support import append, entry, make_dead, run_cli

from yai_spool.cli.spool_commands import ExitCode
from yai_spool.sls.errors import ErrorCode
from yai_spool.spool import Spool

RECORD_FIELDS = {
    "id",
    "state",
    "dest",
    "entry",
    "enqueued_at",
    "attempts",
    "nbytes",
    "error_code",
    "error_message",
    "request_id",
    "dead_at",
    "original_id",
}


def _populate(path: Path) -> float:
    """2 dead letters (two codes), then 6 READY records over two hours; returns 'now'."""
    now = time.time()
    make_dead(path, [entry("poison one", level="ERROR")], code=ErrorCode.InvalidKey)
    make_dead(
        path,
        [entry("poison two", level="ERROR")],
        code=ErrorCode.PostBodyInvalid,
        request_id="REQPOISON2",
    )
    append(
        path,
        [
            entry("boot", level="INFO", logger="app", at=now - 7200),
            entry("db slow", level="WARNING", logger="app.db", at=now - 3600),
            entry("db down", level="ERROR", logger="app.db", at=now - 1800),
            entry("apple pie", level="ERROR", logger="apple", at=now - 60),
            entry("x" * 500, level="CRITICAL", logger="app.http", at=now - 30),
            entry("debug noise", level="DEBUG", logger="app", at=now - 10),
        ],
    )
    return now


def _messages(lines: list[dict]) -> list[str]:
    return [dict(r["entry"]["contents"])["message"] for r in lines]


def test_peek_filters_and_json_lines(spool_dir: Path) -> None:
    path = spool_dir / "app.spool"
    _populate(path)

    warn = run_cli("peek", path, "--level", "warning", "--logger", "app", "--json")
    assert warn.code == ExitCode.OK
    lines = warn.json_lines()
    assert _messages(lines) == ["db slow", "db down", "x" * 500]  # "apple" is not under "app"
    assert all(set(r) == RECORD_FIELDS and r["state"] == "ready" for r in lines)
    assert lines[0]["dest"] == {
        "project": "cli-project",
        "logstore": "cli-logstore",
        "topic": "",
        "source": "",
        "tags": [],
    }

    window = run_cli("peek", path, "--since", "2h30m", "--until", "20m", "--limit", "2", "--json")
    assert _messages(window.json_lines()) == ["boot", "db slow"]

    iso = run_cli(
        "peek", path, "--since", time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime()), "--json"
    )
    assert iso.code == ExitCode.OK
    assert iso.json_lines() == []  # everything was logged before this second

    dead = run_cli("peek", path, "--state", "dead", "--error-code", "PostBodyInvalid", "--json")
    (record,) = dead.json_lines()
    assert record["state"] == "dead"
    assert record["error_code"] == ErrorCode.PostBodyInvalid
    assert record["request_id"] == "REQPOISON2"
    assert record["dead_at"] is not None
    assert _messages([record]) == ["poison two"]


def test_peek_table_truncates_and_shows_leased(spool_dir: Path) -> None:
    path = spool_dir / "app.spool"
    _populate(path)
    with Spool(path) as flusher:
        batch = flusher.lease(2, 1 << 20, lease_seconds=300)  # an in-flight batch
        assert batch is not None
        table = run_cli("peek", path)
        leased = run_cli("peek", path, "--state", "leased", "--json")

    assert table.code == ExitCode.OK
    assert "4 ready record(s)" in table.stdout
    assert "x" * 500 not in table.stdout  # long values are cut in the table...
    assert "…" in table.stdout
    assert "apple pie" in table.stdout
    assert [r["id"] for r in leased.json_lines()] == list(batch.ids)
    assert {r["state"] for r in leased.json_lines()} == {"leased"}


def test_export_every_state_to_a_private_file(spool_dir: Path, tmp_path: Path) -> None:
    path = spool_dir / "app.spool"
    _populate(path)
    with Spool(path) as flusher:
        assert flusher.lease(1, 1 << 20, lease_seconds=300) is not None
        out = tmp_path / "export.jsonl"
        result = run_cli("export", path, "-o", out)
        errors_only = run_cli("export", path, "--state", "dead")

    assert result.code == ExitCode.OK
    assert "exported 8 record(s)" in result.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["state"] for r in lines] == ["ready"] * 5 + ["leased"] + ["dead"] * 2
    assert _messages(lines)[-3:] == ["boot", "poison one", "poison two"]  # leased: the oldest
    assert all(set(r) == RECORD_FIELDS for r in lines)
    assert lines[0]["enqueued_at"] > 0
    assert [r["error_code"] for r in errors_only.json_lines()] == [
        ErrorCode.InvalidKey,
        ErrorCode.PostBodyInvalid,
    ]


def test_reading_commands_on_missing_or_corrupt_spools(spool_dir: Path) -> None:
    missing = run_cli("peek", spool_dir / "nope.spool")
    assert missing.code == ExitCode.MISSING
    assert "no spool at" in missing.stderr

    garbage = spool_dir / "garbage.spool"
    garbage.write_bytes(b"\x00garbage" * 100)
    corrupt = run_cli("export", garbage)
    assert corrupt.code == ExitCode.CORRUPT
    assert "cannot be read as a spool" in corrupt.stderr
    assert garbage.read_bytes() == b"\x00garbage" * 100  # read-only: untouched, not moved

    bad_level = run_cli("peek", garbage, "--level", "LOUD")
    assert bad_level.code == ExitCode.USAGE
