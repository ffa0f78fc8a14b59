"""``yai-spool doctor``: the checklist against real spools and the emulator."""

from __future__ import annotations

from pathlib import Path

from cli_support import (
    KEY_ID,
    LOGSTORE,
    PROJECT,
    SECRET,
    TOKEN,
    WRONG_SECRET,
    append,
    cli_env,
    entry,
    run_cli,
)

from yai_spool.cli.spool_commands import ExitCode
from yai_spool.emulator import Emulator
from yai_spool.sls.errors import ErrorCode
from yai_spool.spool import Spool


def _checks(result_json: dict) -> dict[str, tuple[str, str]]:
    return {c["name"]: (c["status"], c["detail"]) for c in result_json["checks"]}


def test_everything_passes_with_one_empty_probe(spool_dir: Path, emu: Emulator) -> None:
    path = spool_dir / "app.spool"
    Spool(path).close()
    probe = ("--endpoint", emu.url, "--project", PROJECT, "--logstore", LOGSTORE)

    result = run_cli("doctor", path, *probe, "--json")
    assert result.code == ExitCode.OK, result.stdout
    doc = result.json()
    assert doc["ok"] is True
    checks = _checks(doc)
    assert checks[f"spool {path}: integrity"] == ("pass", "quick_check ok")
    assert checks[f"spool {path}: permissions"][0] == "pass"
    assert checks[f"spool {path}: health"][0] == "pass"
    assert checks["credentials present"] == (
        "pass",
        f"environment (key {KEY_ID[:4]}**** + security token)",
    )
    assert checks["clock skew"][0] == "pass"
    assert checks["credentials valid"][0] == "pass"
    # Exactly one authenticated request, and it wrote nothing.
    (put,) = [r for r in emu.requests() if r.method == "POST"]
    assert (put.status, put.log_count, put.access_key_id) == (200, 0, KEY_ID)
    assert emu.count(PROJECT, LOGSTORE) == 0

    text = run_cli("doctor", path, *probe)
    assert text.code == ExitCode.OK
    assert text.first_line.startswith("doctor: 0 failed")
    assert "PASS credentials valid: PutLogs probe (0 logs)" in text.stdout


def test_credentials_directory_and_a_refused_key(spool_dir: Path, emu: Emulator) -> None:
    creds = spool_dir.parent / "credentials"
    creds.mkdir(mode=0o700)
    # The names the systemd units use (LoadCredential=), as 'yai-spool run' reads them.
    (creds / "sls-access-key-id").write_text(KEY_ID + "\n")
    (creds / "sls-access-key-secret").write_text(WRONG_SECRET + "\n")
    (creds / "sls-security-token").write_text(TOKEN + "\n")
    env = cli_env(credentials=False, extra={"CREDENTIALS_DIRECTORY": str(creds)})

    result = run_cli(
        "doctor",
        spool_dir,
        "--endpoint",
        emu.url,
        "--project",
        PROJECT,
        "--logstore",
        LOGSTORE,
        "--json",
        env=env,
    )
    assert result.code == ExitCode.CHECKS_FAILED
    checks = _checks(result.json())
    assert checks["credentials present"][0] == "pass"
    assert str(creds) in checks["credentials present"][1]
    status, detail = checks["credentials valid"]
    assert status == "fail"
    assert ErrorCode.SignatureNotMatch in detail
    assert "credentials" in detail  # the outcome class, in words
    assert checks[f"spool {spool_dir}: opens"][0] == "fail"  # no *.spool in the directory
    assert SECRET not in result.stdout


def test_loose_modes_and_missing_credentials(spool_dir: Path) -> None:
    path = spool_dir / "app.spool"
    append(path, [entry("waiting")])  # nobody flushes it: health fails
    path.chmod(0o644)

    result = run_cli("doctor", path, "--json", env=cli_env(credentials=False))
    assert result.code == ExitCode.CHECKS_FAILED
    doc = result.json()
    checks = _checks(doc)
    status, detail = checks[f"spool {path}: permissions"]
    # SQLite gives the -wal/-shm it creates the database file's mode, so they are listed too.
    assert status == "warn"
    assert detail.startswith("app.spool is 0644 (expected 0600)")
    assert checks[f"spool {path}: health"][0] == "fail"
    assert checks["credentials present"][0] == "fail"
    assert "ALIBABA_CLOUD_ACCESS_KEY_ID" in checks["credentials present"][1]
    assert checks["endpoint"][0] == "skip"
    assert doc["summary"].startswith("FAIL: ")
    assert path.stat().st_mode & 0o777 == 0o644  # doctor only reports, it repairs nothing


def test_config_names_spools_and_destinations(
    spool_dir: Path, tmp_path: Path, emu: Emulator
) -> None:
    Spool(spool_dir / "app.spool").close()
    good = tmp_path / "yai-spool.toml"
    good.write_text(
        f'[defaults]\nendpoint = "{emu.url}"\nproject = "{PROJECT}"\nlogstore = "{LOGSTORE}"\n'
        f'[[directories]]\npath = "{spool_dir}"\n'
    )
    bad = tmp_path / "bad.toml"
    # A secret pasted into the config: refused, and never echoed (run_cli checks every output).
    bad.write_text(
        f'[defaults]\nendpoint = "https://x.example"\naccess_key_secret = "{WRONG_SECRET}"\n'
    )

    result = run_cli("doctor", "--config", good, "--json")
    assert result.code == ExitCode.OK, result.stdout
    checks = _checks(result.json())
    assert checks[f"config {good}"] == ("pass", "valid: 0 spool(s), 1 director(y/ies)")
    assert checks[f"spool {spool_dir / 'app.spool'}: integrity"][0] == "pass"
    assert checks["credentials valid"][0] == "pass"  # probed the configured destination

    status = run_cli("status", "--config", good)  # the same spools, no paths needed
    assert status.code == ExitCode.OK
    assert status.first_line.startswith(f"OK: {spool_dir / 'app.spool'}: healthy")

    invalid = run_cli("doctor", "--config", bad, "--json", env=cli_env(credentials=False))
    assert invalid.code == ExitCode.CHECKS_FAILED
    assert _checks(invalid.json())[f"config {bad}"][0] == "fail"
    broken = run_cli("status", "--config", bad)
    assert broken.code == ExitCode.NOT_CONFIGURED
