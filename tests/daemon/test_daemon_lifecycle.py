"""``yai-spool run`` as a real subprocess with a real $NOTIFY_SOCKET and a real emulator.

READY -> STATUS/WATCHDOG -> STOPPING across SIGTERM drains, outages at stop time, bad
configuration and credentials before READY, systemd credentials, and a wedged main loop.
"""

from __future__ import annotations

import fcntl
import os
import signal

import pytest
from daemon_support import (
    ACCESS_KEY_ID,
    ACCESS_KEY_SECRET,
    Rig,
    delivered_messages,
    spool_records,
    spool_stats,
    wait_until,
)


def test_daemon_ready_status_watchdog_then_sigterm_drains(rig: Rig) -> None:
    spool = rig.spool_dir / "app.spool"
    spool_records(spool, [])  # the application created its spool before the daemon starts
    # A long linger keeps the records waiting in the spool until SIGTERM hurries the flusher.
    config = rig.config(top={"drain_timeout": 15}, shipping={"linger": 60})
    daemon = rig.run(config, WATCHDOG_USEC="400000")
    ready = rig.notify.wait_key("READY")
    assert ready is not None, daemon.stderr
    assert ready["STATUS"].startswith("ok: 1 spool (")
    assert ready["MAINPID"] == str(daemon.pid)
    assert rig.notify.wait_key("WATCHDOG") is not None
    assert rig.notify.wait_for(lambda m: "STATUS" in m and "READY" not in m) is not None

    n = 500
    spool_records(spool, [f"drain-{i}" for i in range(n)])
    assert spool_stats(spool).ready_records > 0  # still waiting: the drain does the work
    daemon.signal(signal.SIGTERM)
    stopping = rig.notify.wait_key("STOPPING")
    assert stopping is not None
    assert "draining up to 15s" in stopping["STATUS"]
    assert daemon.wait(30) == 0, daemon.stderr
    assert rig.emu.count("proj", "store") == n
    assert set(delivered_messages(rig.emu).values()) == {1}
    notify = rig.notify
    assert notify.index("READY") < notify.index("WATCHDOG") < notify.index("STOPPING")
    assert spool_stats(spool).ready_records == 0
    assert "500 records delivered since start, 0 ready records left on disk" in daemon.stderr
    assert ACCESS_KEY_SECRET not in daemon.stderr + daemon.stdout + "".join(notify.raw)


@pytest.mark.parametrize(
    ("signum", "outage"),
    [(signal.SIGTERM, "down"), (signal.SIGINT, "hang")],
    ids=["sigterm-down", "sigint-hang"],
)
def test_daemon_stop_during_outage_exits_by_the_deadline_and_keeps_records(
    rig: Rig, signum: int, outage: str
) -> None:
    drain = 2
    config = rig.config(top={"drain_timeout": drain})
    if outage == "down":
        rig.emu.down()
    else:
        rig.emu.faults.hang()  # SLS accepts the connection and never answers
    daemon = rig.run(config)
    assert rig.notify.wait_key("READY") is not None, daemon.stderr
    spool = rig.spool_dir / "app.spool"
    n = spool_records(spool, [f"kept-{i}" for i in range(50)])
    if outage == "hang":
        assert rig.emu.faults.wait_held(1, timeout=15)  # a request is in flight at stop time
    else:
        assert daemon.wait_stderr("PutLogs failed", timeout=15)
        status = rig.notify.wait_for(lambda m: "last error: ConnectError" in m.get("STATUS", ""))
        assert status is not None, rig.notify.messages
        assert "(app.spool)" in status["STATUS"]
        assert status["STATUS"].split(":")[0] in ("ok", "lagging", "stalled")
    daemon.signal(signum)
    assert rig.notify.wait_key("STOPPING") is not None
    # Bounded by drain_timeout plus the one-request margin; far below TimeoutStopSec.
    assert daemon.wait(drain + 8) == 0, daemon.stderr
    stats = spool_stats(spool)
    assert stats.ready_records + stats.leased_records == n  # nothing lost, nothing dropped
    assert stats.flusher_pid is None
    assert rig.emu.count("proj", "store") == 0


def test_daemon_bad_configuration_fails_before_ready(rig: Rig) -> None:
    config = rig.tmp / "bad.toml"
    config.write_text(
        f'[defaults]\nendpoint = "{rig.emu.url}"\n[[spools]]\npath = "{rig.tmp}/a.spool"\n'
        f'[[spools]]\npath = "{rig.tmp}/b.spool"\nlogstore = "Bad Store"\n'
    )
    daemon = rig.run(config)
    assert daemon.wait(30) == 78  # EX_CONFIG: the units do not restart on it
    assert "spools[1].logstore: logstore 'Bad Store' is invalid" in daemon.stderr
    assert 'e.g. logstore = "app-logs"' in daemon.stderr
    assert rig.notify.drain(0.2) == []
    assert rig.notify.messages == []  # never READY


def test_daemon_missing_credentials_fail_before_ready(rig: Rig) -> None:
    daemon = rig.run(
        rig.config(), ALIBABA_CLOUD_ACCESS_KEY_ID="", ALIBABA_CLOUD_ACCESS_KEY_SECRET=""
    )
    assert daemon.wait(30) == 78
    assert "credentials: none usable" in daemon.stderr
    assert "LoadCredential=sls-access-key-id:" in daemon.stderr
    assert rig.notify.messages == []


def test_daemon_reads_systemd_credentials_and_never_prints_them(rig: Rig) -> None:
    creds = rig.tmp / "credentials"
    creds.mkdir(mode=0o700)
    (creds / "sls-access-key-id").write_text(ACCESS_KEY_ID + "\n")
    (creds / "sls-access-key-secret").write_text(ACCESS_KEY_SECRET + "\n")
    # No ALIBABA_CLOUD_* variables: the emulator only accepts the sentinel secret, so a
    # delivery proves the credentials directory was used.
    daemon = rig.run(
        rig.config(top={"log_level": "debug"}),
        ALIBABA_CLOUD_ACCESS_KEY_ID="",
        ALIBABA_CLOUD_ACCESS_KEY_SECRET="",
        CREDENTIALS_DIRECTORY=str(creds),
    )
    assert rig.notify.wait_key("READY") is not None, daemon.stderr
    spool_records(rig.spool_dir / "app.spool", [f"cred-{i}" for i in range(20)])
    assert rig.emu.wait_for_count("proj", "store", 20, timeout=15), daemon.stderr
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(30) == 0
    spool_bytes = b"".join(p.read_bytes() for p in rig.spool_dir.iterdir() if p.is_file())
    everything = (
        daemon.stderr + daemon.stdout + "".join(rig.notify.raw) + spool_bytes.decode("latin-1")
    )
    assert "draining to" in daemon.stderr  # debug-level output was produced
    assert ACCESS_KEY_SECRET not in everything


def test_daemon_wedged_main_loop_stops_watchdog_pings(rig: Rig) -> None:
    daemon = rig.run(rig.config(), WATCHDOG_USEC="200000")
    assert rig.notify.wait_key("READY") is not None, daemon.stderr
    assert rig.notify.wait_key("WATCHDOG") is not None
    # Another process holds the new spool's open lock exclusively (as during a quarantine):
    # the main loop blocks opening it, so it must stop pinging systemd.
    new = rig.spool_dir / "stuck.spool"
    lock_fd = os.open(f"{new}.open.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock_fd, fcntl.LOCK_EX)
    try:
        new.touch(mode=0o600)
        # Wait until pings stop (the loop reached the open), then watch a silent window that
        # is 5x the ping period.
        assert wait_until(lambda: rig.notify.drain(0.5) == [], timeout=15)
        assert [m for m in rig.notify.drain(0.5) if "WATCHDOG" in m] == []
        assert "stuck.spool: draining" not in daemon.stderr
    finally:
        fcntl.flock(lock_fd, fcntl.LOCK_UN)
        os.close(lock_fd)
    assert rig.notify.wait_key("WATCHDOG", timeout=15) is not None  # healthy again
    assert daemon.wait_stderr("stuck.spool: draining to", timeout=15)
