"""Discovery of spools created after start (inotify and forced polling), SIGHUP reloads, and
the Prometheus endpoint."""

from __future__ import annotations

import signal
import socket
import urllib.request
from pathlib import Path

import pytest
from daemon_support import (
    ACCESS_KEY_SECRET,
    Rig,
    daemon_env,
    delivered_messages,
    free_port,
    spool_records,
    toml_config,
    wait_until,
)
from prometheus_client.parser import text_string_to_metric_families

from yai_spool.daemon.discovery import is_spool_name, scan_directory, spool_for


def test_daemon_spool_names(tmp_path: Path) -> None:
    assert is_spool_name("app.spool")
    assert not is_spool_name(".app.spool")
    assert not is_spool_name("app.spool-wal")
    assert not is_spool_name("app.spool.flusher.lock")
    assert spool_for("/d/app.spool-wal") == Path("/d/app.spool")
    assert spool_for("/d/app.spool-shm") is None
    assert spool_for("/d/app.spool.corrupt-20260101T000000.000000Z") is None
    (tmp_path / "b.spool").touch()
    (tmp_path / "a.spool").touch()
    (tmp_path / "a.spool-wal").touch()
    (tmp_path / "sub.spool").mkdir()  # a directory is not a spool
    (tmp_path / "link.spool").symlink_to(tmp_path / "a.spool")  # never followed
    assert scan_directory(tmp_path) == [tmp_path / "a.spool", tmp_path / "b.spool"]
    assert scan_directory(tmp_path / "missing") == []


@pytest.mark.parametrize("watch", ["inotify", "poll"])
def test_daemon_discovers_spool_created_after_start(rig: Rig, watch: str) -> None:
    # A long rescan period: discovery must come from the watcher, not the safety net.
    config = rig.config(top={"watch": watch, "poll_interval": 0.2, "rescan_interval": 3600})
    daemon = rig.run(config)
    ready = rig.notify.wait_key("READY")
    assert ready is not None, daemon.stderr
    assert ready["STATUS"].startswith("ok: 0 spools")
    kind = "inotify" if watch == "inotify" else "polling"
    assert f"with {kind}" in daemon.stderr
    for name in ("late-a", "late-b"):
        spool_records(rig.spool_dir / f"{name}.spool", [f"{name}-{i}" for i in range(30)])
    assert rig.emu.wait_for_count("proj", "store", 60, timeout=20), daemon.stderr
    assert set(delivered_messages(rig.emu).values()) == {1}
    assert rig.notify.wait_for(lambda m: m.get("STATUS", "").startswith("ok: 2 spools")) is not None
    # A spool appearing in the directory of... nothing else: files that are not spools are
    # ignored, and a spool outside the watched directories is never adopted.
    outside = rig.tmp / "elsewhere"
    outside.mkdir(mode=0o700)
    spool_records(outside / "stray.spool", ["stray"])
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(30) == 0
    assert "stray.spool" not in daemon.stderr


def test_daemon_sighup_reloads_destinations_and_keeps_config_on_errors(rig: Rig) -> None:
    spool = rig.spool_dir / "app.spool"
    config_path = rig.tmp / "c.toml"

    def write(logstore: str, **extra: str) -> None:
        keys = {"logstore": logstore, **extra}
        toml_config(config_path, endpoint=rig.emu.url, spools=[(spool, keys)])

    write("first")
    daemon = rig.run(config_path)
    assert rig.notify.wait_key("READY") is not None, daemon.stderr
    spool_records(spool, [f"one-{i}" for i in range(10)])
    assert rig.emu.wait_for_count("proj", "first", 10, timeout=15), daemon.stderr

    write("second", topic="reloaded-topic")
    daemon.signal(signal.SIGHUP)
    assert rig.notify.wait_key("RELOADING") is not None
    assert daemon.wait_stderr("reloaded", timeout=15), daemon.stderr
    spool_records(spool, [f"two-{i}" for i in range(10)])
    assert rig.emu.wait_for_count("proj", "second", 10, timeout=15), daemon.stderr

    config_path.write_text("drain_timeout = 'soon'\n")  # broken: must be ignored
    daemon.signal(signal.SIGHUP)
    assert daemon.wait_stderr("keeping the running configuration", timeout=15)
    assert "drain_timeout: must be a number of seconds" in daemon.stderr
    spool_records(spool, [f"three-{i}" for i in range(10)])
    assert rig.emu.wait_for_count("proj", "second", 20, timeout=15), daemon.stderr
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(30) == 0
    assert rig.emu.count("proj", "first") == 10  # nothing after the reload went to the old store
    assert rig.emu.count("proj", "store") == 0
    assert {log.topic for log in rig.emu.logs("proj", "first")} == {""}
    assert {log.topic for log in rig.emu.logs("proj", "second")} == {"reloaded-topic"}


def test_daemon_without_config_file_drains_named_paths(rig: Rig) -> None:
    env = daemon_env(rig.notify, YAI_SPOOL_ENDPOINT=rig.emu.url)
    daemon = rig.start([str(rig.spool_dir)], env)
    assert rig.notify.wait_key("READY") is not None, daemon.stderr
    spool_records(rig.spool_dir / "bare.spool", [f"bare-{i}" for i in range(15)])
    assert rig.emu.wait_for_count("proj", "store", 15, timeout=15), daemon.stderr
    daemon.signal(signal.SIGHUP)  # re-reads the same arguments and environment
    assert daemon.wait_stderr("reloaded the command line", timeout=15), daemon.stderr
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(30) == 0


def test_daemon_metrics_port_in_use_fails_before_ready(rig: Rig) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        daemon = rig.run(rig.config(top={"metrics_port": port}))
        assert daemon.wait(30) == 1
    assert "cannot start" in daemon.stderr
    assert rig.notify.messages == []


def test_daemon_prometheus_metrics(rig: Rig) -> None:
    port = free_port()
    spool = rig.spool_dir / "app.spool"
    config = rig.config(top={"metrics_port": port}, defaults={"logstore": "metrics-store"})
    daemon = rig.run(config)
    assert rig.notify.wait_key("READY") is not None, daemon.stderr
    spool_records(spool, [f"m-{i}" for i in range(25)])
    assert rig.emu.wait_for_count("proj", "metrics-store", 25, timeout=15), daemon.stderr
    labels = {
        "spool": str(spool),
        "endpoint": rig.emu.url,
        "project": "*",
        "logstore": "metrics-store",
    }
    text = ""
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

    def value(name: str, **extra: str) -> float | None:
        return samples.get((name, tuple(sorted({**labels, **extra}.items()))))

    def scrape() -> bool:
        nonlocal text, samples
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            text = response.read().decode()
        samples = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }
        # The emulator stores a batch before it answers; the daemon acks after the answer.
        return value("yai_spool_delivered_records_total") == 25

    assert wait_until(scrape, timeout=15), text
    assert value("yai_spool_delivered_records_total") == 25
    assert value("yai_spool_appended_records_total") == 25
    assert value("yai_spool_records", state="ready") == 0
    assert value("yai_spool_records", state="dead") == 0
    assert value("yai_spool_flusher_held") == 1
    assert value("yai_spool_flusher_pid") == daemon.pid
    assert value("yai_spool_spool_readable") == 1
    last = value("yai_spool_last_success_timestamp_seconds")
    assert last is not None
    assert last > 0
    for name in (
        "yai_spool_record_bytes",
        "yai_spool_file_bytes",
        "yai_spool_oldest_ready_age_seconds",
        "yai_spool_dead_lettered_records_total",
        "yai_spool_retried_records_total",
        "yai_spool_retry_requests_total",
        "yai_spool_throttled_requests_total",
    ):
        assert any(key[0] == name for key in samples), name
    assert samples[("yai_spool_daemon_delivered_records_total", ())] == 25
    assert samples[("yai_spool_daemon_reloads_total", (("result", "ok"),))] == 0
    assert ACCESS_KEY_SECRET not in text
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(30) == 0
