"""SQLite storage: filters, clear, concurrent read-only readers, secrets never stored."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from emulator_support import (
    LOGSTORE,
    PROJECT,
    SECRET,
    STS_CREDS,
    TOKEN,
    group_of,
    prepare,
    send,
)

from yai_spool.emulator import Emulator, EmulatorStore


def test_requests_filter_destinations_and_clear(emu: Emulator) -> None:
    send(emu, prepare(emu, group_of("a", "b"), logstore="one"))
    send(emu, prepare(emu, group_of("c"), logstore="two"))
    send(emu, prepare(emu, group_of("d"), project="other-proj", logstore="one"))
    assert [s.logstore for s in emu.requests(PROJECT)] == ["one", "two"]
    assert [s.project for s in emu.requests(logstore="one")] == [PROJECT, "other-proj"]
    assert emu.destinations() == [
        ("other-proj", "one", 1, 1),
        (PROJECT, "one", 1, 2),
        (PROJECT, "two", 1, 1),
    ]
    assert emu.wait_for_count(PROJECT, "one", 2, timeout=1)
    emu.clear()
    assert emu.count(PROJECT, "one") == 0
    assert emu.requests() == []
    assert emu.counters().accepted_logs == 4  # counters survive clear()


def test_read_only_reader_sees_batches_while_the_server_writes(emu: Emulator) -> None:
    assert emu.config.db_path is not None
    reader = EmulatorStore(emu.config.db_path, read_only=True)
    try:
        for n in range(1, 4):
            assert send(emu, prepare(emu, group_of("x"))).status == 200
            assert reader.count(PROJECT, LOGSTORE) == n
    finally:
        reader.close()


def test_the_database_never_holds_secrets_or_tokens(emu: Emulator, tmp_path: Path) -> None:
    send(emu, prepare(emu, credentials=STS_CREDS))
    send(emu, prepare(emu, credentials=STS_CREDS, signature_version="v4"))
    assert emu.config.db_path is not None
    conn = sqlite3.connect(emu.config.db_path)
    try:
        dump = "\n".join(conn.iterdump())
    finally:
        conn.close()
    assert SECRET not in dump
    assert TOKEN not in dump
    assert "Signature=" not in dump
    assert "LOG " not in dump
