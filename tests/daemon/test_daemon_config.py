"""The daemon configuration: TOML schema, error messages (key + fix), layering, environment."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from daemon_support import REPO

from yai_spool.daemon import config as cfg
from yai_spool.daemon.config import (
    DaemonConfig,
    WatchMode,
    load_daemon_config,
)
from yai_spool.sls.errors import ConfigError

EXAMPLE = REPO / "systemd" / "yai-spool.example.toml"


def load_text(tmp_path: Path, text: str, **env: str) -> DaemonConfig:
    path = tmp_path / "yai-spool.toml"
    path.write_text(text)
    return load_daemon_config(path, environ=env)


def error_of(tmp_path: Path, text: str, **env: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, text, **env)
    return str(info.value)


def test_daemon_example_config_is_valid_and_fits_the_unit_stop_timeout() -> None:
    config = load_daemon_config(EXAMPLE, environ={"YAI_SPOOL_TIMEOUT_STOP_SEC": "30"})
    assert config.directories[0].path == Path("/var/lib/yai-spool")
    assert config.drain_timeout == 20
    assert config.metrics_port is None  # off by default
    assert config.watch is WatchMode.AUTO


def test_daemon_example_config_documents_every_key() -> None:
    text = EXAMPLE.read_text()
    keys = set(cfg._TOP_KEYS) - {"defaults", "shipping", "spools", "directories", "handler"}
    keys |= {f.name for f in dataclasses.fields(cfg.ShippingConfig)}
    keys |= {"endpoint", "project", "logstore", "topic", "path"}
    for key in sorted(keys):
        # Each key appears as an assignment (active or commented out) preceded by a comment.
        match = re.search(rf"^(#[^\n]*\n)+#? ?{key} = ", text, re.M)
        assert match, f"{key} is not documented in {EXAMPLE.name}"
    for table in ("[defaults]", "[shipping]", "[[directories]]", "[[spools]]", "[handler]"):
        assert table in text


def test_daemon_config_error_names_key_and_fix(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        """
[defaults]
endpoint = "cn-hangzhou.log.aliyuncs.com"
[[spools]]
path = "/var/lib/yai-spool/a.spool"
[[spools]]
path = "/var/lib/yai-spool/b.spool"
logstore = "App Logs"
""",
    )
    assert "spools[1].logstore: logstore 'App Logs' is invalid" in message
    assert 'e.g. logstore = "app-logs"' in message
    assert str(tmp_path / "yai-spool.toml") in message


def test_daemon_config_reports_every_problem_at_once(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        """
drain_timeout = "20s"
wacth = "poll"
metrics_port = 70000
[shipping]
compression = "gzip"
batch_size = 0
[[spools]]
logstore = "app-logs"
[[directories]]
path = "/srv/spools"
access_key_secret = "should-not-be-here"
""",
    )
    lines = message.splitlines()[1:]
    expected = {
        "drain_timeout: must be a number of seconds": "e.g. drain_timeout = 20",
        "wacth: unknown key": "did you mean watch?",
        "metrics_port: must be in 1..65535": "e.g. metrics_port = 9464",
        "shipping.compression: must be one of": 'e.g. compression = "lz4"',
        "shipping.batch_size: must be in 1..40960": "e.g. batch_size = 4096",
        "spools[0].path: missing": 'set it, e.g. path = "/var/lib/yai-spool/app.spool"',
        "directories[0].access_key_secret: credentials are not accepted here": "LoadCredential=",
        "directories[0].endpoint: missing": "YAI_SPOOL_ENDPOINT",
    }
    for start, fix in expected.items():
        line = next((ln for ln in lines if start in ln), None)
        assert line is not None, f"no error line for {start!r} in:\n{message}"
        _, _, fix_part = line.partition("; ")
        assert fix in fix_part, line
    assert "should-not-be-here" not in message  # a secret-looking value is never echoed


def test_daemon_config_syntax_and_file_errors(tmp_path: Path) -> None:
    assert "TOML syntax error" in error_of(tmp_path, "drain_timeout = \n")
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=r"--config: .*nope.toml does not exist; create it"):
        load_daemon_config(missing, environ={})
    with pytest.raises(ConfigError, match=r"YAI_SPOOL_CONFIG: .*does not exist"):
        load_daemon_config(None, environ={"YAI_SPOOL_CONFIG": str(missing)})
    with pytest.raises(ConfigError, match="no configuration; pass --config FILE"):
        load_daemon_config(None, environ={})


def test_daemon_config_drain_must_fit_timeout_stop_sec(tmp_path: Path) -> None:
    text = '[defaults]\nendpoint = "e.example"\n[[directories]]\npath = "/d"\ndrain_timeout = 28\n'
    text = "drain_timeout = 28\n" + text.replace("drain_timeout = 28\n", "")
    message = error_of(tmp_path, text, YAI_SPOOL_TIMEOUT_STOP_SEC="30")
    assert "drain_timeout: 28 s does not fit TimeoutStopSec=30s" in message
    assert "set drain_timeout <= 25 or raise TimeoutStopSec" in message
    assert load_text(tmp_path, text, YAI_SPOOL_TIMEOUT_STOP_SEC="33").drain_timeout == 28
    assert "YAI_SPOOL_TIMEOUT_STOP_SEC: must be a number" in error_of(
        tmp_path, text, YAI_SPOOL_TIMEOUT_STOP_SEC="30s"
    )


def test_daemon_config_v4_needs_a_region(tmp_path: Path) -> None:
    base = '[shipping]\nsignature_version = "v4"\n[[directories]]\npath = "/d"\n'
    message = error_of(tmp_path, base + 'endpoint = "http://127.0.0.1:9"\n')
    assert "shipping.region: missing" in message
    assert 'set region = "cn-hangzhou"' in message
    regional = load_text(tmp_path, base + 'endpoint = "cn-shanghai.log.aliyuncs.com"\n')
    assert regional.shipping.signature_version == "v4"


def test_daemon_config_layers_defaults_directories_and_spools(tmp_path: Path) -> None:
    config = load_text(
        tmp_path,
        """
[defaults]
endpoint = "https://cn-hangzhou.log.aliyuncs.com"
project = "base-proj"
topic = "t0"
[[directories]]
path = "spools"
logstore = "dir-store"
[[spools]]
path = "spools/special.spool"
endpoint = "http://127.0.0.1:8080"
logstore = "special"
""",
    )
    directory = tmp_path / "spools"  # relative to the configuration file
    special, plain = directory / "special.spool", directory / "plain.spool"
    targets = config.resolve({directory: [plain, special]})
    assert targets[plain].endpoint == "https://cn-hangzhou.log.aliyuncs.com"
    assert (targets[plain].project, targets[plain].logstore, targets[plain].topic) == (
        "base-proj",
        "dir-store",
        "t0",
    )
    assert targets[special].endpoint == "http://127.0.0.1:8080"
    assert targets[special].logstore == "special"
    assert targets[special].source == "spools[0]"
    assert config.watched_directories == (directory,)
    assert config.adopts(directory / "new.spool")
    assert not config.adopts(directory / "x.spool-wal")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.drain_timeout = 1.0  # type: ignore[misc]
    directory.mkdir()
    plain.touch()
    (directory / "notes.txt").touch()
    (directory / "plain.spool-wal").touch()
    assert config.spool_paths == (special, plain)  # listed first, then found on disk


def test_daemon_config_environment_and_arguments(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[defaults]\nendpoint = "file.example"\n[[directories]]\npath = "/a"\n'
        '[[spools]]\npath = "/b/x.spool"\nendpoint = "own.example"\n'
    )
    env = {"YAI_SPOOL_CONFIG": str(path), "YAI_SPOOL_ENDPOINT": "env.example"}
    config = load_daemon_config(None, environ=env)
    assert config.directories[0].destination.endpoint == "env.example"  # env beats [defaults]
    assert config.spools[0].destination.endpoint == "own.example"  # the entry beats env
    flag = load_daemon_config(None, endpoint="flag.example", environ=env)
    assert flag.directories[0].destination.endpoint == "flag.example"
    # No file at all: paths from the command line plus an endpoint.
    spool_dir = tmp_path / "d"
    spool_dir.mkdir()
    bare = load_daemon_config(
        None, paths=[spool_dir, tmp_path / "one.spool"], environ={"YAI_SPOOL_ENDPOINT": "e.ex"}
    )
    assert [d.path for d in bare.directories] == [spool_dir]
    assert [s.path for s in bare.spools] == [tmp_path / "one.spool"]
    with pytest.raises(
        ConfigError, match=r"argument 1 .*: no endpoint to ship to; pass --endpoint"
    ):
        load_daemon_config(None, paths=[spool_dir], environ={})


def test_daemon_run_check_validates_without_starting(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from yai_spool.cli import app

    good = tmp_path / "good.toml"
    good.write_text('[defaults]\nendpoint = "e.example"\n[[directories]]\npath = "/d"\n')
    result = CliRunner().invoke(app, ["run", "--check", "--config", str(good)], env={})
    assert result.exit_code == 0, result.output
    assert "configuration OK: 0 spool files, 1 directories" in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text('[[directories]]\npath = "/d"\nendpoint = "e.example"\nlog_level = "loud"\n')
    result = CliRunner().invoke(app, ["run", "--check", "--config", str(bad)], env={})
    assert result.exit_code == 78
    assert "directories[0].log_level: unknown key; remove it (allowed here:" in result.output
