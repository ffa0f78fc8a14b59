"""Fixtures of the conformance suite: one verifying emulator, the proxy env, sender factory.

Owns: the module-wide emulator (tests isolate themselves by logstore, so one emulator
serves every case and the suite stays fast), the ``HTTP_PROXY`` environment the official
clients need, and ``make_sender``, which builds senders from conformance_support and closes
every one of them at teardown (pytest turns an unclosed socket into an error).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
from conformance_support import (
    ACCESS_KEY_ID,
    ACCESS_KEY_SECRET,
    STS_KEY_ID,
    STS_SECRET,
    STS_TOKEN,
    Sender,
    build_sender,
)
from shared_support import sts_emulator

from yai_spool.emulator import Emulator


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    """A verifying emulator: one permanent key and one STS-only temporary key."""
    permanent, temporary = (ACCESS_KEY_ID, ACCESS_KEY_SECRET), (STS_KEY_ID, STS_SECRET)
    with sts_emulator(permanent, temporary, STS_TOKEN) as emu:
        yield emu


@pytest.fixture
def proxy_env(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """Route the official clients' plain-HTTP traffic to the emulator (proxy mode)."""
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", emulator.url)
    monkeypatch.setenv("http_proxy", emulator.url)
    return emulator


@pytest.fixture
def make_sender(proxy_env: Emulator, exit_stack: ExitStack) -> Callable[..., Sender]:
    """``make_sender(sender_id, key_id=None, secret=None)``; closed at teardown."""

    def make(sender_id: str, *, key_id: str | None = None, secret: str | None = None) -> Sender:
        sender = build_sender(sender_id, proxy_env.url, key_id=key_id, secret=secret)
        exit_stack.callback(sender.close)
        return sender

    return make
