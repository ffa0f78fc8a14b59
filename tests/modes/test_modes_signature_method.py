"""``signature_method=`` through every way a handler is built: keywords for each mode,
``dictConfig``, the TOML ``[shipping]`` table, and the daemon's sender.

Each shipping case logs one record to the verifying emulator and checks the request it
received: ``x-log-signaturemethod`` says the chosen HMAC, and the emulator accepted the
signature (it hashes with the method the request names, so a mismatch would be a 401).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from modes_support import (
    AK_ID,
    AK_SECRET,
    DEADLINE,
    FAST_RETRY,
    LOGSTORE,
    PROJECT,
    configured,
    destination,
    make_logger,
    messages,
    toml_defaults,
)

import yai_spool
from yai_spool import ConfigError, make_handler
from yai_spool.emulator import Emulator
from yai_spool.handlers.aio import running

METHODS = ["hmac-sha1", "hmac-sha256"]


def sent_methods(emu: Emulator) -> set[str]:
    requests = emu.requests(PROJECT, LOGSTORE)
    assert requests, "nothing reached the emulator"
    assert {r.outcome for r in requests} == {"accepted"}
    return {r.headers["x-log-signaturemethod"] for r in requests}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("mode", ["spool", "memory", "sync"])
def test_thread_modes_sign_with_the_chosen_method(
    emu: Emulator, tmp_path: Path, mode: str, method: str
) -> None:
    options: dict[str, Any] = {"signature_method": method}
    if mode == "spool":
        options["spool_path"] = tmp_path / "sig.spool"
    if mode != "sync":
        options.update(linger=0.01, retry=FAST_RETRY)
    handler = make_handler(mode, **destination(emu, **options))
    try:
        make_logger(handler).warning("signed with %s", method)
        if mode != "sync":  # sync mode has delivered before emit returned
            assert handler.flush_until(DEADLINE)  # type: ignore[attr-defined]
    finally:
        handler.close()
    assert messages(emu) == [f"signed with {method}"]
    assert sent_methods(emu) == {method}


@pytest.mark.parametrize("queue", ["spool", "memory"])
def test_asyncio_mode_signs_with_the_chosen_method(
    emu: Emulator, tmp_path: Path, queue: str
) -> None:
    options: dict[str, Any] = {"signature_method": "hmac-sha256", "linger": 0.01}
    if queue == "spool":
        options["spool_path"] = tmp_path / "aio.spool"
    handler = make_handler("asyncio", queue=queue, **destination(emu, retry=FAST_RETRY, **options))

    async def main() -> None:
        async with running(handler) as (flusher,):
            make_logger(handler).warning("from the loop")
            assert await flusher.flush(DEADLINE)

    try:
        asyncio.run(main())
    finally:
        handler.close()
    assert messages(emu) == ["from the loop"]
    assert sent_methods(emu) == {"hmac-sha256"}


@pytest.mark.parametrize("mode", ["spool", "daemon", "memory", "sync"])
def test_an_unknown_method_is_refused_when_the_handler_is_built(mode: str, tmp_path: Path) -> None:
    extra: dict[str, Any] = (
        {"spool_path": tmp_path / "x.spool"} if mode in ("spool", "daemon") else {}
    )
    with pytest.raises(ConfigError, match="signature_method must be one of 'hmac-sha1'"):
        make_handler(
            mode,
            project=PROJECT,
            logstore=LOGSTORE,
            endpoint="http://127.0.0.1:9",
            signature_method="sha256",
            **extra,
        )


def test_dictconfig_passes_signature_method(emu: Emulator) -> None:
    with configured(
        "dictconfig-sig",
        mode="memory",
        linger=0.01,
        signature_method="hmac-sha256",
        **destination(emu),
    ) as (logger, handler):
        logger.info("dictConfig, hmac-sha256")
        assert handler.flush_until(DEADLINE)  # type: ignore[attr-defined]
    assert sent_methods(emu) == {"hmac-sha256"}


def _toml(emu: Emulator, tmp_path: Path, shipping: str) -> Path:
    path = tmp_path / "yai-spool.toml"
    path.write_text(
        toml_defaults(emu)
        + f"""
[shipping]
linger = 0.01
{shipping}

[handler]
mode = "spool"
spool_path = "spools/app.spool"

[[directories]]
path = "spools"
"""
    )
    return path


def test_toml_shipping_signature_method_reaches_the_handler(
    emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", AK_ID)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", AK_SECRET)
    handler = yai_spool.from_toml(
        _toml(emu, tmp_path, 'signature_method = "hmac-sha256"'), retry=FAST_RETRY
    )
    try:
        make_logger(handler).warning("from toml")
        assert handler.flush_until(DEADLINE)  # type: ignore[attr-defined]
    finally:
        handler.close()
    assert sent_methods(emu) == {"hmac-sha256"}


def test_toml_refuses_an_unknown_signature_method_naming_the_key(
    emu: Emulator, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=r"shipping\.signature_method: must be one of"):
        yai_spool.from_toml(_toml(emu, tmp_path, 'signature_method = "hmac-md5"'))


def test_daemon_sender_uses_the_shipping_signature_method(emu: Emulator, tmp_path: Path) -> None:
    from yai_spool.daemon.config import load_daemon_config
    from yai_spool.daemon.runner import make_sender
    from yai_spool.sls.credentials import Credentials, StaticCredentialsProvider
    from yai_spool.sls.model import Log, LogGroup

    config = load_daemon_config(
        _toml(emu, tmp_path, 'signature_method = "hmac-sha256"'), environ={}
    )
    assert config.shipping.signature_method == "hmac-sha256"
    target = _first_target(config, tmp_path)
    sender = make_sender(target, StaticCredentialsProvider(Credentials(AK_ID, AK_SECRET)))
    try:
        sender.put_logs(PROJECT, LOGSTORE, LogGroup((Log(1_767_225_600, (("msg", "d"),)),)))
    finally:
        sender.close()
    assert sent_methods(emu) == {"hmac-sha256"}


def _first_target(config: Any, tmp_path: Path) -> Any:
    """The daemon's SpoolTarget for a spool found in the configured directory."""
    (source,) = config.directories
    path = source.path / "app.spool"
    return config.resolve({source.path: [path]})[path]
