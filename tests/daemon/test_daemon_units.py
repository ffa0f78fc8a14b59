"""The systemd units: ``systemd-analyze verify``/``security`` accept them, every directive says
why, they agree with the daemon's defaults, and their sandbox does not break the daemon
(``SystemCallFilter=`` checked against the syscalls the daemon really makes, under strace;
``MemoryDenyWriteExecute=`` checked by running the daemon under ``PR_SET_MDWE``)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from daemon_support import REPO, Rig, daemon_env, free_port, spool_records

from yai_spool.daemon.config import STOP_MARGIN, DaemonConfig, load_daemon_config

UNITS = [REPO / "systemd" / "yai-spool.service", REPO / "systemd" / "yai-spool@.service"]
VENV_SCRIPT = "/opt/yai-spool/venv/bin/yai-spool"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None,
    reason="systemd-analyze is not installed (Debian: apt-get install -y systemd)",
)


def installed_copy(unit: Path, directory: Path, name: str | None = None) -> Path:
    """The unit with ExecStart/ExecReload pointing at this venv's console script, which
    ``verify`` requires to exist."""
    script = Path(sys.executable).with_name("yai-spool")
    assert script.exists(), "the package must be installed in the venv (pip install -e .)"
    target = directory / (name or unit.name)
    target.write_text(unit.read_text().replace(VENV_SCRIPT, str(script)))
    return target


def service_directives(unit: Path) -> list[tuple[str, str, str]]:
    """(key, value, the comment block above it) for each line of [Service]."""
    out, comment, section = [], "", ""
    for line in unit.read_text().splitlines():
        if line.startswith("["):
            section, comment = line, ""
        elif line.startswith("#"):
            comment += line + "\n"
        elif "=" in line and section == "[Service]":
            key, value = line.split("=", 1)
            out.append((key, value, comment))
        elif not line.strip():
            comment = ""
    return out


@needs_analyze
@pytest.mark.parametrize("instance", [None, "yai-spool@myapp.service"])
def test_daemon_units_pass_systemd_analyze_verify(tmp_path: Path, instance: str | None) -> None:
    assert SYSTEMD_ANALYZE is not None
    unit = UNITS[1] if instance else UNITS[0]
    copy = installed_copy(unit, tmp_path, instance)
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", "--man=no", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # verify prints unknown keys and bad values as warnings yet may exit 0: both must be clean.
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


@needs_analyze
def test_daemon_unit_security_exposure_is_low(tmp_path: Path) -> None:
    assert SYSTEMD_ANALYZE is not None
    copy = installed_copy(UNITS[0], tmp_path)
    # The threshold is on the internal 0..100 scale: 20 = "2.0" in the printed summary
    # (0 = fully locked down, 10.0 = no sandboxing; "OK" ends below 3.0).
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "security", "--offline=true", "--threshold=20", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_daemon_units_explain_every_directive_and_match_the_daemon(unit: Path) -> None:
    directives = service_directives(unit)
    for key, _, comment in directives:
        assert comment, f"{unit.name}: {key}= has no comment saying why"
    values: dict[str, list[str]] = {}
    for key, value, _ in directives:
        values.setdefault(key, []).append(value)
    assert values["Type"] == ["notify"]
    assert values["NotifyAccess"] == ["main"]
    assert values["ExecStart"][0].startswith(VENV_SCRIPT + " run --config /etc/yai-spool/")
    assert values["ExecReload"][-1] == "/bin/kill -HUP $MAINPID"
    assert values["RestartPreventExitStatus"] == ["78"]  # = command.EX_CONFIG
    for required in (
        "WatchdogSec", "Restart", "NoNewPrivileges", "ProtectSystem", "ReadWritePaths",
        "PrivateTmp", "ProtectHome", "CapabilityBoundingSet", "RestrictAddressFamilies",
        "SystemCallFilter", "MemoryDenyWriteExecute", "LoadCredential", "StateDirectory", "User",
    ):  # fmt: skip
        assert required in values, f"{unit.name} lacks {required}="
    assert "DynamicUser" not in values  # spools are 0600 files of the application's user
    text = unit.read_text()
    for key, value, _ in directives:  # credentials are referenced by file, never inlined
        assert key == "LoadCredential" or "secret" not in value.lower(), key
    # TimeoutStopSec is passed to the daemon, and the default drain fits under it.
    stop = int(values["TimeoutStopSec"][0].rstrip("s"))
    assert f"Environment=YAI_SPOOL_TIMEOUT_STOP_SEC={stop}" in text
    assert DaemonConfig.__dataclass_fields__["drain_timeout"].default + STOP_MARGIN <= stop
    assert values["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]


def test_daemon_example_config_fits_the_units_stop_timeout() -> None:
    config = load_daemon_config(
        REPO / "systemd" / "yai-spool.example.toml",
        environ={"YAI_SPOOL_TIMEOUT_STOP_SEC": "30"},
    )
    assert config.drain_timeout + STOP_MARGIN <= 30


def _syscall_groups(analyze: str) -> dict[str, list[str]]:
    text = subprocess.run(
        [analyze, "syscall-filter"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    groups: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("@"):
            current = groups.setdefault(line.strip(), [])
        elif not line.strip() or not line.startswith(" "):
            current = None
        elif current is not None and not line.strip().startswith("#"):
            current.append(line.strip())
    return groups


def _expand(names: list[str], groups: dict[str, list[str]]) -> set[str]:
    out: set[str] = set()
    for name in names:
        out |= _expand(groups[name], groups) if name.startswith("@") else {name}
    return out


@needs_analyze
@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_daemon_syscalls_fit_the_unit_filter(rig: Rig) -> None:
    assert SYSTEMD_ANALYZE is not None
    filters = [v for k, v, _ in service_directives(UNITS[0]) if k == "SystemCallFilter"]
    groups = _syscall_groups(SYSTEMD_ANALYZE)
    allowed: set[str] = set()
    for value in filters:
        if value.startswith("~"):
            allowed -= _expand(value[1:].split(), groups)
        else:
            allowed |= _expand(value.split(), groups)
    assert {"inotify_init1", "inotify_add_watch", "flock", "sendto"} <= allowed
    trace = rig.tmp / "strace.out"
    tracer = rig.start(
        ["--config", str(rig.config(top={"metrics_port": free_port()}))],
        daemon_env(rig.notify),
        prefix=["strace", "-f", "-qq", "-o", str(trace)],
    )
    try:
        ready = rig.notify.wait_key("READY", timeout=60)
        assert ready is not None, tracer.stderr
        pid = int(ready["MAINPID"])  # the daemon itself; signals to strace would not reach it
        spool_records(rig.spool_dir / "app.spool", [f"sc-{i}" for i in range(20)])
        assert rig.emu.wait_for_count("proj", "store", 20, timeout=60), tracer.stderr
        os.kill(pid, signal.SIGHUP)
        assert tracer.wait_stderr("reloaded", timeout=60), tracer.stderr
        os.kill(pid, signal.SIGTERM)
        assert tracer.wait(60) == 0, tracer.stderr  # strace exits with the tracee's status
    finally:
        # strace detaches (and leaves the daemon running) when it is killed itself: end
        # every traced daemon process we started, found by pid in the trace.
        traced_text = trace.read_text() if trace.exists() else ""
        for traced in {int(p) for p in re.findall(r"^(\d+) ", traced_text, re.M)}:
            with contextlib.suppress(OSError):
                if b"yai_spool.cli" in Path(f"/proc/{traced}/cmdline").read_bytes():
                    os.kill(traced, signal.SIGKILL)
    text = trace.read_text()
    used = set(re.findall(r"^\d+\s+(\w+)\(", text, re.M))
    families = set(re.findall(r"\bsocket\((AF_\w+)", text))
    assert families <= {"AF_UNIX", "AF_INET", "AF_INET6"}, families  # RestrictAddressFamilies=
    used.discard("execve")  # strace's own exec of the interpreter is in @default anyway
    if os.geteuid() == 0:
        # SQLite gives new -wal/-shm files the database's owner only when running as root
        # (robust_fchown); the units run as a non-root User=, where it never calls fchown.
        used.discard("fchown")
    assert used, "strace recorded nothing"
    assert used <= allowed, f"blocked by SystemCallFilter=: {sorted(used - allowed)}"


def _mdwe_supported() -> bool:
    # PR_SET_MDWE (Linux >= 6.3) is the kernel twin of MemoryDenyWriteExecute=: probe it in a
    # child so this process keeps its own memory rules.
    probe = "import ctypes,sys; sys.exit(ctypes.CDLL(None).prctl(65, 1, 0, 0, 0) != 0)"
    return subprocess.run([sys.executable, "-c", probe], check=False, timeout=60).returncode == 0


@pytest.mark.skipif(not _mdwe_supported(), reason="kernel without PR_SET_MDWE (Linux < 6.3)")
def test_daemon_runs_with_memory_deny_write_execute(rig: Rig) -> None:
    # The wrapper turns W^X enforcement on, then becomes the daemon (exec keeps MDWE).
    wrapper = (
        "import ctypes, os, sys; "
        "assert ctypes.CDLL(None).prctl(65, 1, 0, 0, 0) == 0; "
        "os.execv(sys.argv[1], sys.argv[1:])"
    )
    daemon = rig.start(
        ["--config", str(rig.config(top={"metrics_port": free_port()}))],
        daemon_env(rig.notify),
        prefix=[sys.executable, "-c", wrapper],
    )
    assert rig.notify.wait_key("READY", timeout=30) is not None, daemon.stderr
    spool_records(rig.spool_dir / "app.spool", [f"wx-{i}" for i in range(20)])
    assert rig.emu.wait_for_count("proj", "store", 20, timeout=30), daemon.stderr
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(30) == 0, daemon.stderr
