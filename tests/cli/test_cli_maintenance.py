"""``yai-spool purge`` and ``vacuum``: confirmation, refusals, and what they really remove."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import append, assert_no_secret, cli_env, entry, make_dead, run_cli, stats

from yai_spool.cli.spool_commands import ExitCode
from yai_spool.sls.errors import ErrorCode
from yai_spool.spool import Spool


def test_purge_needs_yes_without_a_terminal(spool_dir: Path) -> None:
    path = spool_dir / "app.spool"
    make_dead(path, [entry("poison")], code=ErrorCode.InvalidKey)
    append(path, [entry("waiting"), entry("waiting too")])

    refused = run_cli("purge", path, "--state", "dead")  # stdin is not a terminal
    assert refused.code == ExitCode.REFUSED
    assert "without confirmation; add --yes" in refused.stderr
    dry = run_cli("purge", path, "--state", "all", "--dry-run", "--json")
    assert dry.json() == {"dry_run": True, "would_purge": 3, "state": "all"}
    assert stats(path).total_records == 3

    dead = run_cli("purge", path, "--state", "dead", "--yes", "--json")
    assert dead.json() == {"purged": 1, "state": "dead"}
    after = stats(path)
    assert (after.ready_records, after.dead_records, after.purged) == (2, 0, 1)

    missing_state = run_cli("purge", path, "--yes")
    assert missing_state.code == ExitCode.USAGE


def test_purge_all_after_an_interactive_yes(spool_dir: Path) -> None:
    path = spool_dir / "app.spool"
    make_dead(path, [entry("poison")], code=ErrorCode.InvalidKey)
    append(path, [entry("waiting")])
    master, slave = os.openpty()  # a terminal on stdin, so the command asks
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "yai_spool.cli", "purge", str(path), "--state", "all"],
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=cli_env(),
            text=True,
        )
        os.close(slave)
        os.write(master, b"y\n")  # buffered by the terminal until the prompt reads it
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(master)
    assert_no_secret(out, err)
    assert proc.returncode == ExitCode.OK, err
    assert f"Delete 2 record(s) (ready, leased and dead) from {path} for good?" in err
    assert out.strip() == f"deleted 2 record(s) (ready, leased and dead) from {path}"
    assert stats(path).total_records == 0


def test_vacuum_reclaims_space_and_respects_a_live_flusher(spool_dir: Path) -> None:
    path = spool_dir / "app.spool"
    append(path, [entry("x" * 2000) for _ in range(1500)])
    with Spool(path) as spool:
        spool.checkpoint("TRUNCATE")
        spool.purge("all")

    with Spool(path) as flusher:
        assert flusher.acquire_flusher()
        refused = run_cli("vacuum", path)
    assert refused.code == ExitCode.REFUSED
    assert "Stop the service first, or use --force" in refused.stderr

    result = run_cli("vacuum", path, "--json")
    assert result.code == ExitCode.OK, result.stderr
    report = result.json()
    assert report["bytes_before"] > 3_000_000
    assert report["bytes_after"] < 200_000
    assert report["reclaimed"] == report["bytes_before"] - report["bytes_after"]
    assert stats(path).file_bytes <= report["bytes_after"]
    assert run_cli("status", path).code == ExitCode.OK  # still a healthy spool

    gone = run_cli("vacuum", spool_dir / "gone.spool")
    assert gone.code == ExitCode.MISSING
    assert not (spool_dir / "gone.spool").exists()  # a write command never creates a spool


def test_write_commands_refuse_root_on_another_users_spool(spool_dir: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root can write another user's spool")
    path = spool_dir / "app.spool"
    make_dead(path, [entry("poison")], code=ErrorCode.InvalidKey)
    for file in spool_dir.iterdir():
        os.chown(file, 65534, 65534)  # the service user's spool

    result = run_cli("purge", path, "--state", "dead", "--yes")
    assert result.code == ExitCode.REFUSED
    assert "belongs to uid 65534; run this command as that user" in result.stderr
    assert {f.stat().st_uid for f in spool_dir.iterdir()} == {65534}  # nothing created as root
    assert stats(path).dead_records == 1
