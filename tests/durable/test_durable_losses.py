"""Losses that used to be silent: a damaged WAL, a lost WAL, drops on a full disk.

Real parts only: producers are child processes killed with SIGKILL, the ``-wal`` file is
damaged on disk byte by byte, the full disk is a real 3 MiB tmpfs, and ``yai-spool status``
runs as a subprocess. Each loss must reach the operator as an event and a verdict with its
exit code (README, "Guarantees, per failure mode").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from durable_support import REPO_ROOT, child_env, kill9, read_line, reap, spawn_child, wait_until

from yai_spool.emulator import Emulator
from yai_spool.spool import Spool

PAGE = 4096
FRAME = 24 + PAGE


def status(path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    """``yai-spool status PATH --json``: (exit code, the spool's document)."""
    proc = subprocess.run(
        [sys.executable, "-m", "yai_spool.cli", "status", str(path), "--json", *args],
        capture_output=True,
        text=True,
        env=child_env(),
        cwd=str(REPO_ROOT),
        timeout=60,
        check=False,
    )
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout)["spools"][0]


def crash_with_wal(spool_path: Path, count: int) -> None:
    """A producer logs ``count`` records and is SIGKILLed at once: its WAL stays behind."""
    child = spawn_child("hold", spool_path, count)
    try:
        assert read_line(child) == "appended"
        kill9(child)
    finally:
        reap(child)
    assert Path(f"{spool_path}-wal").stat().st_size > FRAME  # frames the kill left behind


def damage(wal: Path, where: str) -> None:
    with open(wal, "r+b") as f:
        if where == "header":
            f.seek(16)  # the salts: SQLite then ignores every frame
            f.write(os.urandom(8))
        else:  # page data of frame 2: SQLite stops reading there
            f.seek(32 + FRAME + 24 + 100)
            f.write(os.urandom(64))


@pytest.mark.parametrize("where", ["frame", "header"])
def test_a_damaged_wal_is_reported_not_silently_dropped(spool_path: Path, where: str) -> None:
    crash_with_wal(spool_path, 300)
    wal = Path(f"{spool_path}-wal")
    damage(wal, where)
    found = wal.read_bytes()

    with Spool(spool_path) as spool:
        events = [e for e in spool.open_events if e.kind == "wal_damaged"]
        assert len(events) == 1, spool.open_events
        detail = events[0].detail
        assert detail["transactions_skipped"] >= 1
        stored = spool.stats().ready_records
    assert stored < 300  # the loss itself is real: SQLite dropped what followed the damage
    saved = Path(str(detail["saved_to"]))
    assert saved.read_bytes() == found  # the evidence, exactly as found
    assert saved.stat().st_mode & 0o777 == 0o600

    code, doc = status(spool_path)
    assert (code, doc["verdict"]) == (7, "corrupt")
    assert "WAL was damaged" in doc["summary"]
    saved.unlink()  # acknowledged
    code, doc = status(spool_path)
    assert doc["verdict"] != "corrupt"


def test_a_lost_wal_is_caught_by_the_ledger_high_water_mark(spool_path: Path) -> None:
    """A reader pins the WAL (no checkpoint can copy the second stage into the database);
    the WAL is then lost with the processes: the ledger's mark says how many records went."""
    from yai_spool.spool.ledger import read as read_ledger

    producer = spawn_child("stages", spool_path, "100", "50", stdin=subprocess.PIPE)
    pinner = None
    try:
        assert read_line(producer) == "stage"
        mark = lambda: read_ledger(spool_path).mark  # noqa: E731
        assert wait_until(lambda: (m := mark()) is not None and m.appended >= 100)
        assert wait_until(lambda: Path(f"{spool_path}-wal").stat().st_size == 0)  # all in db
        pinner = spawn_child("pin", spool_path)
        assert read_line(pinner) == "pinned"
        assert producer.stdin is not None
        producer.stdin.write(b"go\n")
        producer.stdin.flush()
        assert read_line(producer) == "stage"
        assert wait_until(lambda: (m := mark()) is not None and m.appended >= 150)
        kill9(producer)
        kill9(pinner)
    finally:
        reap(producer)
        if pinner is not None:
            reap(pinner)
    for suffix in ("-wal", "-shm"):  # the WAL is gone (a disk problem, a careless copy)
        Path(f"{spool_path}{suffix}").unlink()

    with Spool(spool_path) as spool:
        events = [e for e in spool.open_events if e.kind == "records_missing"]
        assert len(events) == 1, spool.open_events
        assert events[0].detail["records_missing"] == 50
        assert spool.stats().ready_records == 100
    code, doc = status(spool_path)
    assert (code, doc["verdict"]) == (7, "corrupt")
    assert "50 committed records are missing" in doc["summary"]
    with Spool(spool_path) as spool:  # reported once: the mark now counts from here
        assert not [e for e in spool.open_events if e.kind == "records_missing"]


def test_status_says_dropping_on_a_full_disk_and_counts_every_record(
    tiny_disk: Path,
) -> None:
    spool_path = tiny_disk / "spool" / "app.spool"
    filler = tiny_disk / "filler"
    producer = spawn_child("fill", spool_path, stdin=subprocess.PIPE)
    try:
        assert producer.stdin is not None
        emitted = json.loads(read_line(producer, timeout=120))["emitted"]

        # The producer lives and cannot write its spool: its drops reach status anyway.
        def dropping() -> tuple[int, dict[str, Any]] | None:
            code, doc = status(spool_path)
            return (code, doc) if doc["verdict"] == "dropping" else None

        assert wait_until(lambda: dropping() is not None, timeout=30)
        code, doc = status(spool_path)
        assert code == 14
        assert doc["dropped"].get("disk_full", 0) >= 100
        assert doc["counters"]["appended"] + doc["dropped_total"] == emitted

        filler.unlink()  # space again: the next write also persists the pending drops
        producer.stdin.write(b"more\n")
        producer.stdin.flush()
        emitted = json.loads(read_line(producer))["emitted"]
        producer.stdin.write(b"close\n")
        producer.stdin.flush()
        assert read_line(producer) == "closed"
        code, doc = status(spool_path)
        assert (code, doc["verdict"]) == (14, "dropping")  # written now, and still recent
        assert doc["counters"]["appended"] + doc["dropped_total"] == emitted
        code, doc = status(spool_path, "--drop-window", "0s")
        assert code != 14
    finally:
        reap(producer)


def test_internal_warnings_are_one_line_without_a_traceback(
    emu: Emulator, spool_path: Path
) -> None:
    """An application that never configured logging: a flusher failing on its spool (another
    process holds the database's write lock) says so in one line per event on stderr
    (logging's last resort), never with a traceback."""
    emu.down()  # records wait in the spool; the flusher keeps leasing and releasing them
    child = spawn_child("failing-flusher", spool_path, emu.url, stdin=subprocess.PIPE)
    pinner = None
    try:
        assert read_line(child) == "logged"
        pinner = spawn_child("pin", spool_path, "exclusive")
        assert read_line(pinner) == "pinned"
        assert child.stdin is not None
        child.stdin.write(b"go\n")
        child.stdin.flush()
        assert json.loads(read_line(child, timeout=60))["failures"] >= 1
        kill9(pinner)
        emu.up()
        child.stdin.write(b"exit\n")
        child.stdin.flush()
        child.wait(30)
        assert child.stderr is not None
        stderr = child.stderr.read().decode()
    finally:
        reap(child)
        if pinner is not None:
            reap(pinner)
    assert "spool error" in stderr, stderr
    assert "Traceback" not in stderr, stderr
    assert all(line.startswith("yai-spool") for line in stderr.splitlines()), stderr


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Any:
    """A real 3 MiB tmpfs (needs mount privileges; skipped without them) with a 512 KiB
    filler file, so that deleting it frees space again."""
    where = tmp_path / "disk"
    where.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m,mode=0700", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode().strip()}")
    try:
        (where / "filler").write_bytes(b"\0" * (512 * 1024))
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
