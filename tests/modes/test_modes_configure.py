"""One configuration surface: make_handler keywords, dictConfig, and the [handler] TOML table."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from modes_support import (
    AK_ID,
    AK_SECRET,
    DEADLINE,
    LOGSTORE,
    PROJECT,
    configured,
    destination,
    messages,
    stored,
    toml_defaults,
)

import yai_spool
from yai_spool import ConfigError, MemoryQueueHandler, SpoolHandler, SyncSLSHandler, make_handler
from yai_spool.emulator import Emulator


def built(handler: logging.Handler) -> tuple[str, str]:
    return type(handler).__name__, str(getattr(handler, "flusher_mode", "-"))


def test_every_mode_from_keywords(tmp_path: Path) -> None:
    common = {"project": PROJECT, "logstore": LOGSTORE, "endpoint": "http://127.0.0.1:9"}
    spool = tmp_path / "app.spool"
    cases = {
        "spool": ({"spool_path": spool}, ("SpoolHandler", "thread")),
        "daemon": ({"spool_path": spool}, ("SpoolHandler", "none")),
        "memory": ({}, ("MemoryQueueHandler", "thread")),
        "sync": ({}, ("SyncSLSHandler", "-")),
    }
    for mode, (extra, expected) in cases.items():
        handler = make_handler(mode, **common, **extra)  # type: ignore[arg-type]
        try:
            assert built(handler) == expected, mode
        finally:
            handler.close()
    memory = make_handler("asyncio", queue="memory", **common)
    durable = make_handler("asyncio", spool_path=spool, max_in_flight=2, **common)
    try:
        assert built(memory) == ("MemoryQueueHandler", "asyncio")
        assert type(durable).__name__ == "AsyncSpoolHandler"
        assert durable.max_in_flight == 2  # type: ignore[attr-defined]
    finally:
        memory.close()
        durable.close()


def test_unknown_and_misplaced_keys_are_refused_with_a_hint() -> None:
    with pytest.raises(ConfigError, match="did you mean 'batch_size'"):
        make_handler("memory", project=PROJECT, logstore=LOGSTORE, endpoint="x", batchsize=10)
    with pytest.raises(ConfigError, match="max_in_flight: not an option of mode='sync'"):
        make_handler("sync", project=PROJECT, logstore=LOGSTORE, endpoint="x", max_in_flight=2)
    with pytest.raises(ConfigError, match="flusher: fixed by mode='memory'"):
        make_handler("memory", project=PROJECT, logstore=LOGSTORE, endpoint="x", flusher="none")
    with pytest.raises(ConfigError, match="did you mean 'memory'"):
        make_handler("memroy", project=PROJECT, logstore=LOGSTORE)
    with pytest.raises(ConfigError, match="only mode='asyncio' takes a queue"):
        make_handler("memory", queue="memory", project=PROJECT, logstore=LOGSTORE)
    with pytest.raises(ConfigError, match="logstore 'x' is invalid"):
        make_handler("sync", project=PROJECT, logstore="x", endpoint="http://127.0.0.1:9")


def test_dictconfig_factory_builds_and_ships(emu: Emulator) -> None:
    with configured(
        "dictconfig-app",
        "DEBUG",
        mode="memory",
        level="INFO",
        linger=0.01,
        retry={"base": 0.01, "cap": 0.05},
        tags={"service": "checkout"},
        **destination(emu),
    ) as (logger, handler):
        assert isinstance(handler, MemoryQueueHandler)
        logger.debug("below the handler level")
        logger.info("configured by dictConfig")
        assert handler.flush_until(DEADLINE)
        assert messages(emu) == ["configured by dictConfig"]
        assert dict(stored(emu)[0].tags) == {"service": "checkout"}


def test_toml_handler_table_over_daemon_defaults(
    emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "yai-spool.toml"
    config.write_text(
        toml_defaults(emu)
        + """
[shipping]
compression = "zstd"
linger = 0.01
max_age = 3600

[handler]
mode = "spool"
spool_path = "spools/app.spool"
source = "toml-host"
retry = { base = 0.01, cap = 0.05 }
tags = { env = "toml" }

[[directories]]
path = "spools"
"""
    )
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", AK_ID)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", AK_SECRET)
    monkeypatch.setenv("YAI_SPOOL_CONFIG", str(config))
    handler = yai_spool.from_toml()
    try:
        assert isinstance(handler, SpoolHandler)
        assert handler.spool_path == tmp_path / "spools" / "app.spool"
        assert handler._flusher_config.retry.max_age == 3600  # [shipping] under [handler]
        assert handler._flusher_config.retry.base == 0.01
        logger = logging.getLogger("toml-app")
        logger.addHandler(handler)
        logger.warning("from toml")
        assert handler.flush_until(DEADLINE)
        (log,) = stored(emu)
        assert (log.text("message"), log.source, dict(log.tags)) == (
            "from toml",
            "toml-host",
            {"env": "toml"},
        )
        assert {r.compress_type for r in emu.requests()} == {"zstd"}
    finally:
        logging.getLogger("toml-app").handlers.clear()
        handler.close()
    # The sync mode takes [defaults] and the [shipping] keys it has (compression), no others.
    sync_config = tmp_path / "sync.toml"
    sync_config.write_text(
        config.read_text()
        .replace('mode = "spool"', 'mode = "sync"')
        .replace('spool_path = "spools/app.spool"\n', "")
    )
    sync = yai_spool.from_toml(sync_config, retry={"base": 1.0, "cap": 2.0})  # kwargs win
    assert isinstance(sync, SyncSLSHandler)
    assert sync._backoff.policy.base == 1.0
    assert sync._options.compression.value == "zstd"
    sync.close()


def test_toml_refuses_secrets_unknown_keys_and_missing_tables(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(
        '[handler]\nmode = "memory"\nproject = "p-1"\naccess_key_secret = "nope-secret"\n'
        "batchsize = 3\n"
    )
    with pytest.raises(ConfigError) as caught:
        yai_spool.from_toml(config)
    text = str(caught.value)
    assert "handler.access_key_secret: credentials are not accepted here" in text
    assert "handler.batchsize: unknown key; did you mean batch_size?" in text
    assert "nope-secret" not in text
    empty = tmp_path / "empty.toml"
    empty.write_text("drain_timeout = 3\n")
    with pytest.raises(ConfigError, match=r"no \[handler\] table"):
        yai_spool.from_toml(empty)


#: (handler class path, keywords) a constructor refuses; each is built through dictConfig,
#: as an application's logging config would, and directly.
REFUSED = {
    "spool-bad-endpoint": ("yai_spool.SpoolHandler", {"endpoint": "not a url"}),
    "memory-bad-project": ("yai_spool.MemoryQueueHandler", {"project": "NOT valid!"}),
    "sync-bad-project": ("yai_spool.SyncSLSHandler", {"project": "NOT valid!"}),
    "asyncio-bad-endpoint": (
        "yai_spool.handlers.aio.AsyncSpoolHandler",
        {"endpoint": "not a url"},
    ),
}


@pytest.mark.parametrize("how", ["direct", "dictConfig"])
@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_handler_whose_constructor_raised_is_quiet_at_exit(
    tmp_path: Path, case: str, how: str
) -> None:
    """A constructor that raises must leave nothing for logging.shutdown() at exit: no
    half-built handler in logging's list, no AttributeError traceback on the way out (the
    exception's traceback keeps the refused object alive until exit)."""
    import subprocess
    import sys
    import textwrap

    path, bad = REFUSED[case]
    options = {
        "project": "quiet-exit",
        "logstore": "app",
        "endpoint": "http://127.0.0.1:9",
        "spool_path": str(tmp_path / "a.spool"),
        **bad,
    }
    if "Spool" not in path:
        del options["spool_path"]
    script = textwrap.dedent(f"""
        import importlib, logging.config, sys
        module, _, name = {path!r}.rpartition(".")
        options = {options!r}
        try:
            if {how!r} == "direct":
                getattr(importlib.import_module(module), name)(**options)
            else:
                logging.config.dictConfig({{
                    "version": 1,
                    "handlers": {{"sls": {{"class": {path!r}, **options}}}},
                    "root": {{"handlers": ["sls"]}},
                }})
        except (ValueError, TypeError) as exc:  # ConfigError is a ValueError
            kept = exc
            print("refused")
        else:
            sys.exit("bad arguments were accepted")
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "refused"
    assert done.stderr == ""
