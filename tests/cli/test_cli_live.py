"""The reading commands on a live spool: a producer appends and a flusher ships meanwhile.

Two real child processes share one spool file: a producer logging through
``SpoolHandler(flusher="none")`` and a ``ThreadFlusher`` shipping to the emulator. The CLI
reads the spool read-only in between; afterwards every record the producer logged must have
reached the emulator exactly as if the CLI had never looked.
"""

from __future__ import annotations

import json
from pathlib import Path

from cli_support import LOGSTORE, PROJECT, Child, cli_env, run_cli, stats, wait_for

from yai_spool.cli.spool_commands import ExitCode
from yai_spool.emulator import Emulator


def test_status_peek_export_while_producing_and_shipping(spool_dir: Path, emu: Emulator) -> None:
    path = spool_dir / "busy.spool"
    producer = Child("produce", str(path), env=cli_env())
    flusher = Child("flush", str(path), emu.url, env=cli_env())
    try:
        wait_for(lambda: emu.count(PROJECT, LOGSTORE) > 0, what="first delivery")
        status = run_cli("status", path, "--json")
        peek = run_cli("peek", path, "--state", "ready", "--level", "WARNING", "--json")
        export = run_cli("export", path, "--state", "all")
        count = wait_for(lambda: stats(path).delivered, what="delivered counter")

        produced = int(producer.finish())
        assert emu.wait_for_count(PROJECT, LOGSTORE, produced, timeout=30)
        flusher.finish()
    finally:
        producer.kill()
        flusher.kill()

    assert status.code == ExitCode.OK, status.stdout
    (spool,) = status.json()["spools"]
    assert spool["verdict"] == "ok"
    assert spool["flusher"]["pid"] == flusher.pid
    assert spool["counters"]["appended"] > 0
    assert spool["last_success"]["request_id"]

    assert peek.code == ExitCode.OK
    for record in peek.json_lines():  # whatever was waiting at that instant, all valid
        assert record["state"] == "ready"
        levels = dict(record["entry"]["contents"])["levelname"]
        assert levels in {"WARNING", "ERROR"}
        assert record["dest"]["project"] == PROJECT

    assert export.code == ExitCode.OK
    for line in export.stdout.splitlines():
        assert json.loads(line)["state"] in {"ready", "leased", "dead"}

    assert count > 0
    final = stats(path)
    assert final.delivered == produced  # the CLI never took or changed a record
    assert final.ready_records == final.leased_records == final.dead_records == 0
    stored = {dict(log.contents)["message"] for log in emu.logs(PROJECT, LOGSTORE)}
    assert len(stored) == produced

    after = run_cli("status", path)
    assert after.code == ExitCode.OK
    assert after.first_line.startswith(f"OK: {path}: healthy: empty; last delivery")
