"""``yai-spool status``: one verdict per spool, its exit code, plain words on the first line.

Every case runs the real command in a subprocess against a real spool file built through the
public Spool API (or a real flusher child talking to the emulator).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cli_support import (
    KEY_ID,
    LOGSTORE,
    PROJECT,
    WRONG_SECRET,
    Child,
    append,
    cli_env,
    drop_dac_prefix,
    entry,
    run_cli,
    stats,
    wait_for,
)

from yai_spool.cli.spool_commands import ExitCode
from yai_spool.emulator import Emulator
from yai_spool.sls.errors import ErrorCode
from yai_spool.spool import Spool


def test_empty_spool_is_ok_and_json_has_every_field(spool_dir: Path) -> None:
    path = spool_dir / "empty.spool"
    Spool(path).close()

    text = run_cli("status", path)
    assert text.code == ExitCode.OK
    assert text.first_line.startswith(f"OK: {path}: healthy: empty")

    doc = run_cli("status", path, "--json")
    assert doc.code == ExitCode.OK
    report = doc.json()
    assert report["verdict"] == "ok"
    assert report["exit_code"] == 0
    (spool,) = report["spools"]
    assert spool["ready"] == {"records": 0, "bytes": 0}
    assert spool["dead"]["records"] == 0
    assert spool["flusher"] is None
    assert spool["last_error"] is None
    assert spool["disk"]["file_bytes"] > 0
    for key in ("dropped", "counters", "events", "oldest_ready_age", "last_success"):
        assert key in spool


def test_waiting_records_without_flusher(spool_dir: Path) -> None:
    path = spool_dir / "app.spool"
    append(path, [entry(f"m{i}") for i in range(3)])

    result = run_cli("status", path)
    assert result.code == ExitCode.NO_FLUSHER
    assert result.first_line.startswith(f"NO-FLUSHER: {path}: 3 records waiting")
    assert "no process is shipping them" in result.first_line
    assert "nobody" in result.stdout  # the flusher row


def test_lagging_while_a_flusher_holds_the_lock(spool_dir: Path) -> None:
    path = spool_dir / "app.spool"
    append(path, [entry("old")], age=120)
    with Spool(path) as flusher:
        assert flusher.acquire_flusher()  # this test process is the flusher
        result = run_cli("status", path, "--json")
        quick = run_cli("status", path, "--lag-threshold", "10m")

    assert result.code == ExitCode.LAGGING
    (spool,) = result.json()["spools"]
    assert spool["verdict"] == "lagging"
    assert spool["flusher"]["pid"] == os.getpid()
    assert spool["oldest_ready_age"] >= 120
    assert quick.code == ExitCode.OK  # the same spool under a 10-minute threshold


def test_stalled_by_repeated_transient_errors(spool_dir: Path) -> None:
    path = spool_dir / "app.spool"
    append(path, [entry("waiting")], age=90)
    with Spool(path) as flusher:
        assert flusher.acquire_flusher()
        flusher.record_error(
            code=ErrorCode.ServerBusy, message="server is busy", request_id="REQBUSY"
        )
        result = run_cli("status", path)

    assert result.code == ExitCode.STALLED
    assert result.first_line.startswith(f"STALLED: {path}: deliveries keep failing: ServerBusy")
    assert "REQBUSY" in result.first_line


def test_stalled_when_a_flusher_delivers_nothing(spool_dir: Path) -> None:
    path = spool_dir / "app.spool"
    append(path, [entry("waiting")], age=600)
    with Spool(path) as flusher:
        assert flusher.acquire_flusher()
        result = run_cli("status", path, "--json")

    assert result.code == ExitCode.STALLED
    (spool,) = result.json()["spools"]
    assert "never delivered anything" in spool["summary"]


def test_blocked_credentials_from_a_real_flusher(spool_dir: Path, emu: Emulator) -> None:
    path = spool_dir / "app.spool"
    append(path, [entry(f"m{i}") for i in range(5)])
    flusher = Child("flush", str(path), emu.url, env=cli_env(secret=WRONG_SECRET))
    try:
        wait_for(lambda: stats(path).last_error, what="the flusher's first error")
        result = run_cli("status", path, "--json")
        text = run_cli("status", path)
    finally:
        flusher.finish()

    assert result.code == ExitCode.BLOCKED_CREDENTIALS
    (spool,) = result.json()["spools"]
    assert spool["verdict"] == "blocked-credentials"
    assert spool["ready"]["records"] + spool["leased"]["records"] == 5  # nothing lost
    assert spool["flusher"]["pid"] == flusher.pid
    error = spool["last_error"]
    assert error["code"] == ErrorCode.SignatureNotMatch
    assert error["outcome"] == "credentials"
    refused = {r.request_id for r in emu.requests() if r.error_code == ErrorCode.SignatureNotMatch}
    assert error["request_id"] in refused
    assert text.code == ExitCode.BLOCKED_CREDENTIALS
    assert text.first_line.startswith(
        f"BLOCKED-CREDENTIALS: {path}: SLS refuses our credentials or destination: "
        "SignatureNotMatch"
    )
    assert emu.count(PROJECT, LOGSTORE) == 0
    assert KEY_ID not in result.stdout  # not even the key id is needed to tell this


def test_corrupt_file_quarantined_then_acknowledged(spool_dir: Path) -> None:
    path = spool_dir / "app.spool"
    path.write_bytes(b"this is not a database " * 200)
    path.chmod(0o600)

    unopenable = run_cli("status", path)  # read-only: never moves the file itself
    assert unopenable.code == ExitCode.CORRUPT
    assert unopenable.first_line.startswith(f"CORRUPT: {path}: {path} cannot be read as a spool")

    Spool(path).close()  # a producer opening it quarantines the file and starts afresh
    (moved,) = spool_dir.glob("app.spool.corrupt-*[0-9]Z")
    result = run_cli("status", path, "--json")
    assert result.code == ExitCode.CORRUPT
    (spool,) = result.json()["spools"]
    assert spool["verdict"] == "corrupt"
    assert str(moved) in spool["summary"]
    (event,) = [e for e in spool["events"] if e["kind"] == "quarantined"]
    assert event["acknowledged"] is False

    for companion in spool_dir.glob("app.spool.corrupt-*"):
        companion.unlink()  # the operator salvaged what they needed
    after = run_cli("status", path, "--json")
    assert after.code == ExitCode.OK
    (event,) = [e for e in after.json()["spools"][0]["events"] if e["kind"] == "quarantined"]
    assert event["acknowledged"] is True


def test_missing_spools_get_their_own_code(spool_dir: Path, tmp_path: Path) -> None:
    not_there = run_cli("status", spool_dir / "nope.spool")
    assert not_there.code == ExitCode.MISSING
    assert not_there.first_line == (
        f"MISSING: {spool_dir / 'nope.spool'}: no spool at {spool_dir / 'nope.spool'} "
        "(no such file or directory)"
    )

    empty_dir = run_cli("status", spool_dir, "--json")
    assert empty_dir.code == ExitCode.MISSING
    assert empty_dir.json()["spools"][0]["summary"] == f"no *.spool file in {spool_dir}"

    a_file = tmp_path / "plain-file"
    a_file.write_text("x")
    under_file = run_cli("status", a_file / "x.spool")
    assert under_file.code == ExitCode.MISSING
    assert "a parent of it is a file" in under_file.first_line


def test_permission_denied(spool_dir: Path) -> None:
    prefix = drop_dac_prefix()
    if prefix is None:
        pytest.skip("running as root without setpriv: chmod cannot deny root")
    path = spool_dir / "app.spool"
    append(path, [entry("secret plans")])
    spool_dir.chmod(0o000)
    try:
        result = run_cli("status", path, prefix=prefix)
        peek = run_cli("peek", path, prefix=prefix)
    finally:
        spool_dir.chmod(0o700)

    assert result.code == ExitCode.PERMISSION_DENIED
    assert result.first_line.startswith(f"PERMISSION-DENIED: {path}: cannot reach {path}")
    assert "permission denied" in result.first_line
    assert peek.code == ExitCode.PERMISSION_DENIED
    assert "permission denied" in peek.stderr
    assert "secret plans" not in peek.stdout


def test_several_spools_worst_wins(spool_dir: Path) -> None:
    Spool(spool_dir / "a-ok.spool").close()
    append(spool_dir / "b-waiting.spool", [entry("m")])

    both = run_cli("status", spool_dir)
    assert both.code == ExitCode.NO_FLUSHER
    assert both.first_line.startswith(f"NO-FLUSHER: {spool_dir / 'b-waiting.spool'}")
    assert both.stdout.splitlines()[1] == "2 spools: 1 ok, 1 no-flusher"

    with_missing = run_cli("status", spool_dir, spool_dir / "gone.spool", "--json")
    assert with_missing.code == ExitCode.MISSING
    verdicts = {Path(s["path"]).name: s["verdict"] for s in with_missing.json()["spools"]}
    assert verdicts == {
        "a-ok.spool": "ok",
        "b-waiting.spool": "no-flusher",
        "gone.spool": "missing",
    }


def test_bad_threshold_is_a_usage_error(spool_dir: Path) -> None:
    result = run_cli("status", spool_dir, "--lag-threshold", "soon")
    assert result.code == ExitCode.USAGE
    assert "--lag-threshold" in result.stderr


def test_help_documents_verdicts_and_exit_codes() -> None:
    result = run_cli("status", "--help")
    assert result.code == 0
    for words in ("blocked-credentials", "Exit codes:", " 6  blocked-credentials", " 9  missing"):
        assert words in result.stdout
