"""Credentials masking, the static/environment/refreshing providers and resolve_credentials."""

from __future__ import annotations

import logging
import threading

import pytest

from yai_spool.sls.credentials import (
    ENV_ACCESS_KEY_ID,
    ENV_ACCESS_KEY_SECRET,
    ENV_SECURITY_TOKEN,
    Credentials,
    CredentialsProvider,
    EnvironmentCredentialsProvider,
    RefreshingCredentialsProvider,
    StaticCredentialsProvider,
    resolve_credentials,
)
from yai_spool.sls.errors import ConfigError, CredentialsError

KEY_ID = "LTAI5tTestKeyId"
SECRET = "TestSecret123-do-not-leak"
TOKEN = "STS.test-token-do-not-leak"


def test_repr_and_str_mask_everything_but_four_key_id_chars() -> None:
    creds = Credentials(KEY_ID, SECRET, TOKEN)
    for text in (repr(creds), str(creds), f"{creds}", repr(StaticCredentialsProvider(creds))):
        assert SECRET not in text
        assert TOKEN not in text
        assert KEY_ID not in text
        assert "LTAI****" in text


def test_credentials_validation_and_empty_token() -> None:
    assert Credentials(KEY_ID, SECRET, "").security_token is None
    for key_id, secret in (("", SECRET), (KEY_ID, ""), (None, SECRET)):
        with pytest.raises(ConfigError) as info:
            Credentials(key_id, secret)  # type: ignore[arg-type]
        assert SECRET not in str(info.value)


def test_static_provider_is_a_credentials_provider() -> None:
    provider = StaticCredentialsProvider(Credentials(KEY_ID, SECRET))
    assert isinstance(provider, CredentialsProvider)
    assert provider.get_credentials() == Credentials(KEY_ID, SECRET)
    with pytest.raises(ConfigError):
        StaticCredentialsProvider((KEY_ID, SECRET))  # type: ignore[arg-type]


def test_environment_provider_reads_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    provider = EnvironmentCredentialsProvider()
    monkeypatch.setenv(ENV_ACCESS_KEY_ID, KEY_ID)
    monkeypatch.setenv(ENV_ACCESS_KEY_SECRET, SECRET)
    monkeypatch.delenv(ENV_SECURITY_TOKEN, raising=False)
    assert provider.get_credentials() == Credentials(KEY_ID, SECRET)
    monkeypatch.setenv(ENV_ACCESS_KEY_SECRET, "rotated-secret")
    monkeypatch.setenv(ENV_SECURITY_TOKEN, TOKEN)
    assert provider.get_credentials() == Credentials(KEY_ID, "rotated-secret", TOKEN)


@pytest.mark.parametrize("missing", [ENV_ACCESS_KEY_ID, ENV_ACCESS_KEY_SECRET])
def test_environment_provider_names_the_missing_variable_never_a_value(missing: str) -> None:
    env = {ENV_ACCESS_KEY_ID: KEY_ID, ENV_ACCESS_KEY_SECRET: SECRET, ENV_SECURITY_TOKEN: TOKEN}
    env[missing] = ""
    with pytest.raises(ConfigError) as info:
        EnvironmentCredentialsProvider(env).get_credentials()
    assert missing in str(info.value)
    assert SECRET not in str(info.value)
    assert TOKEN not in str(info.value)
    del env[missing]
    with pytest.raises(ConfigError, match=missing):
        EnvironmentCredentialsProvider(env).get_credentials()


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Fetcher:
    """Scripted fetch: each call returns the next credentials (valid for `ttl`) or raises."""

    def __init__(self, clock: Clock, ttl: float | None = 3600.0) -> None:
        self.clock = clock
        self.ttl = ttl
        self.calls = 0
        self.fail = False

    def __call__(self) -> tuple[Credentials, float | None]:
        self.calls += 1
        if self.fail:
            raise OSError(f"metadata service down, secret={SECRET}")
        expires = None if self.ttl is None else self.clock.now + self.ttl
        return Credentials(KEY_ID, f"secret-{self.calls}", f"token-{self.calls}"), expires


def test_refreshing_provider_caches_until_refresh_window() -> None:
    clock = Clock()
    fetch = Fetcher(clock)
    provider = RefreshingCredentialsProvider(fetch, refresh_before=300, clock=clock)
    first = provider.get_credentials()
    assert provider.get_credentials() is first
    clock.now += 3600 - 301
    assert provider.get_credentials() is first
    assert fetch.calls == 1
    clock.now += 2  # inside the refresh window
    second = provider.get_credentials()
    assert second.access_key_secret == "secret-2"
    assert fetch.calls == 2


def test_refreshing_provider_keeps_last_good_credentials_while_valid(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    fetch = Fetcher(clock)
    provider = RefreshingCredentialsProvider(
        fetch, refresh_before=300, retry_interval=10, clock=clock
    )
    good = provider.get_credentials()
    fetch.fail = True
    clock.now += 3600 - 100  # in the refresh window, still valid
    with caplog.at_level(logging.WARNING, logger="yai_spool.internal"):
        assert provider.get_credentials() is good
    assert fetch.calls == 2
    assert SECRET not in caplog.text
    # Within retry_interval the failing fetch is not hammered.
    clock.now += 5
    assert provider.get_credentials() is good
    assert fetch.calls == 2
    clock.now += 6
    assert provider.get_credentials() is good
    assert fetch.calls == 3
    # Once expired, a failing refresh is an error that does not leak the fetcher's message.
    clock.now += 100
    with pytest.raises(CredentialsError) as info:
        provider.get_credentials()
    assert SECRET not in str(info.value)
    assert isinstance(info.value.__cause__, OSError)
    fetch.fail = False
    assert provider.get_credentials().access_key_secret == f"secret-{fetch.calls}"


def test_refreshing_provider_first_fetch_failure_raises() -> None:
    clock = Clock()
    fetch = Fetcher(clock)
    fetch.fail = True
    with pytest.raises(CredentialsError):
        RefreshingCredentialsProvider(fetch, clock=clock).get_credentials()


def test_refreshing_provider_rejects_expired_or_wrong_fetch_results() -> None:
    clock = Clock()
    provider = RefreshingCredentialsProvider(
        lambda: (Credentials(KEY_ID, SECRET), clock.now - 1), clock=clock
    )
    with pytest.raises(CredentialsError):
        provider.get_credentials()
    bad = RefreshingCredentialsProvider(lambda: ("not creds", None), clock=clock)  # type: ignore[arg-type,return-value]
    with pytest.raises(CredentialsError):
        bad.get_credentials()


def test_refreshing_provider_without_expiry_fetches_once() -> None:
    clock = Clock()
    fetch = Fetcher(clock, ttl=None)
    provider = RefreshingCredentialsProvider(fetch, clock=clock)
    provider.get_credentials()
    clock.now += 10**9
    provider.get_credentials()
    assert fetch.calls == 1


def test_refreshing_provider_single_flight_under_concurrency() -> None:
    clock = Clock()
    entered = threading.Event()
    release = threading.Event()
    calls = 0

    def slow_fetch() -> tuple[Credentials, float | None]:
        nonlocal calls
        calls += 1
        entered.set()
        assert release.wait(timeout=10)
        return Credentials(KEY_ID, SECRET, TOKEN), clock.now + 3600

    provider = RefreshingCredentialsProvider(slow_fetch, clock=clock)
    results: list[Credentials] = []
    threads = [
        threading.Thread(target=lambda: results.append(provider.get_credentials()))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    assert entered.wait(timeout=10)
    release.set()
    for thread in threads:
        thread.join(timeout=10)
    assert calls == 1
    assert len(results) == 8
    assert all(r is results[0] for r in results)


def test_refreshing_provider_repr_is_masked() -> None:
    clock = Clock()
    provider = RefreshingCredentialsProvider(
        lambda: (Credentials(KEY_ID, SECRET, TOKEN), None), clock=clock
    )
    provider.get_credentials()
    assert SECRET not in repr(provider)
    assert TOKEN not in repr(provider)


def test_resolve_credentials() -> None:
    static = resolve_credentials(KEY_ID, SECRET, TOKEN)
    assert static.get_credentials() == Credentials(KEY_ID, SECRET, TOKEN)
    custom = StaticCredentialsProvider(Credentials(KEY_ID, SECRET))
    assert resolve_credentials(provider=custom) is custom
    assert isinstance(resolve_credentials(), EnvironmentCredentialsProvider)
    with pytest.raises(ConfigError, match="access_key_secret"):
        resolve_credentials(KEY_ID)
    with pytest.raises(ConfigError, match="access_key_id"):
        resolve_credentials(access_key_secret=SECRET)
    with pytest.raises(ConfigError, match="not both"):
        resolve_credentials(KEY_ID, SECRET, provider=custom)
    with pytest.raises(ConfigError, match="security_token"):
        resolve_credentials(security_token=TOKEN)
    with pytest.raises(ConfigError, match="get_credentials"):
        resolve_credentials(provider=object())  # type: ignore[arg-type]
