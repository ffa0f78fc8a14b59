"""The shipping path's own log records never loop back into the spool (watchtower #93/#115).

The handler sits on the ROOT logger at DEBUG, so httpx/httpcore debug records produced while
the flusher thread sends PutLogs reach it. None may be spooled: only application records
arrive, the spool's ``appended`` counter equals what the application logged, and
``logging.shutdown()`` (which holds the handler's lock while it flushes and closes) still
delivers everything.
"""

from __future__ import annotations

import logging
import weakref
from pathlib import Path

from durable_support import (
    LOGSTORE,
    PROJECT,
    assert_exactly_once,
    make_handler,
    spool_totals,
    wait_until,
)

from yai_spool.emulator import Emulator


class Count(logging.Handler):
    """Counts records by logger name (proves the shipping path really did log)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.names: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.names[record.name] = self.names.get(record.name, 0) + 1


def on_root(handler: logging.Handler) -> Count:
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    seen = Count()
    root.addHandler(seen)
    return seen


def test_flusher_debug_logs_are_not_spooled(emu: Emulator, spool_path: Path) -> None:
    handler = make_handler(emu, spool_path, batch_size=20)
    seen = on_root(handler)
    app = logging.getLogger("durable.app")
    for seq in range(200):
        app.debug("app record %d", seq, extra={"seq": seq})
    assert emu.wait_for_count(PROJECT, LOGSTORE, 200, timeout=30)
    assert wait_until(lambda: spool_totals(spool_path) == (0, 0, 0))
    stats = handler.spool.stats()
    logging.getLogger().removeHandler(handler)
    handler.close()

    assert any(n.startswith(("httpx", "httpcore")) for n in seen.names), seen.names
    assert stats.appended == 200  # nothing but the application's records was spooled
    names = {log.get("name") for log in emu.logs(PROJECT, LOGSTORE)}
    assert names == {b"durable.app"}
    assert_exactly_once(emu, range(200))


def test_logging_shutdown_delivers_with_debug_logging_on(emu: Emulator, spool_path: Path) -> None:
    handler = make_handler(
        emu, spool_path, batch_size=20, linger=1.0, flush_timeout=5.0, close_timeout=5.0
    )
    on_root(handler)
    app = logging.getLogger("durable.app")
    for seq in range(300):
        app.info("app record %d", seq, extra={"seq": seq})
    # What the interpreter does at exit: acquire each handler's lock, flush(), close().
    logging.shutdown([weakref.ref(handler)])
    logging.getLogger().removeHandler(handler)
    assert emu.count(PROJECT, LOGSTORE) == 300
    assert_exactly_once(emu, range(300))
    assert spool_totals(spool_path) == (0, 0, 0)
