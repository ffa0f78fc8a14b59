"""Access credentials and the providers that deliver them at signing time.

Owns ``Credentials`` (an access key pair plus optional STS token) and the providers the client
asks for credentials before signing each attempt: static, environment and refreshing (STS).

Invariants:

- A secret or token never appears in ``repr``/``str`` of anything here, nor in exception
  messages: only the first 4 characters of the access key id are shown.
- ``Credentials`` always have a non-empty key id and secret; an empty token means "no token".
- ``EnvironmentCredentialsProvider`` reads the environment on every call (rotation without a
  restart) and names a missing variable, never a value.
- ``RefreshingCredentialsProvider`` is thread-safe, calls ``fetch`` by one thread at a time,
  refreshes ``refresh_before`` seconds before expiry, and keeps serving the last good
  credentials while they are still valid if a refresh fails.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from yai_spool.sls.errors import ConfigError, CredentialsError

__all__ = [
    "ENV_ACCESS_KEY_ID",
    "ENV_ACCESS_KEY_SECRET",
    "ENV_SECURITY_TOKEN",
    "Credentials",
    "CredentialsProvider",
    "EnvironmentCredentialsProvider",
    "RefreshingCredentialsProvider",
    "StaticCredentialsProvider",
    "mask_key_id",
    "resolve_credentials",
]

ENV_ACCESS_KEY_ID = "ALIBABA_CLOUD_ACCESS_KEY_ID"
ENV_ACCESS_KEY_SECRET = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"  # noqa: S105 - a variable name
ENV_SECURITY_TOKEN = "ALIBABA_CLOUD_SECURITY_TOKEN"  # noqa: S105 - a variable name

_log = logging.getLogger("yai_spool.internal")


def mask_key_id(access_key_id: str) -> str:
    """``LTAI5tTestKeyId`` -> ``LTAI****``: enough to tell keys apart in logs, not to use one."""
    return access_key_id[:4] + "****"


@dataclass(frozen=True, slots=True)
class Credentials:
    """An access key pair and an optional STS security token.

    Raises:
        ConfigError: empty or non-string key id or secret.
    """

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.access_key_id, str) or not self.access_key_id:
            raise ConfigError("access_key_id must be a non-empty string")
        if not isinstance(self.access_key_secret, str) or not self.access_key_secret:
            raise ConfigError("access_key_secret must be a non-empty string")
        if self.security_token is not None and not isinstance(self.security_token, str):
            raise ConfigError("security_token must be a string or None")
        if self.security_token == "":
            object.__setattr__(self, "security_token", None)

    def __repr__(self) -> str:
        token = "None" if self.security_token is None else "'****'"
        return (
            f"Credentials(access_key_id={mask_key_id(self.access_key_id)!r}, "
            f"access_key_secret='****', security_token={token})"
        )

    __str__ = __repr__


@runtime_checkable
class CredentialsProvider(Protocol):
    """Anything that returns current credentials; called before signing every attempt."""

    def get_credentials(self) -> Credentials:
        """Return credentials valid for signing a request now."""
        ...


class StaticCredentialsProvider:
    """Always the same credentials."""

    __slots__ = ("_credentials",)

    def __init__(self, credentials: Credentials) -> None:
        if not isinstance(credentials, Credentials):
            raise ConfigError("StaticCredentialsProvider needs a Credentials instance")
        self._credentials = credentials

    def get_credentials(self) -> Credentials:
        return self._credentials

    def __repr__(self) -> str:
        return f"StaticCredentialsProvider({self._credentials!r})"


class EnvironmentCredentialsProvider:
    """Credentials from the ``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``..._SECRET`` /
    ``ALIBABA_CLOUD_SECURITY_TOKEN`` environment variables.

    The variables are read on every call so a rotated key is picked up without a restart.

    Args:
        environ: the mapping to read; ``None`` means ``os.environ`` at call time.
    """

    __slots__ = ("_environ",)

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ

    def get_credentials(self) -> Credentials:
        env = os.environ if self._environ is None else self._environ
        key_id = env.get(ENV_ACCESS_KEY_ID, "")
        secret = env.get(ENV_ACCESS_KEY_SECRET, "")
        if not key_id:
            raise ConfigError(f"environment variable {ENV_ACCESS_KEY_ID} is not set or empty")
        if not secret:
            raise ConfigError(f"environment variable {ENV_ACCESS_KEY_SECRET} is not set or empty")
        return Credentials(key_id, secret, env.get(ENV_SECURITY_TOKEN) or None)

    def __repr__(self) -> str:
        return "EnvironmentCredentialsProvider()"


Fetch = Callable[[], tuple[Credentials, float | None]]


class RefreshingCredentialsProvider:
    """Credentials that expire (STS), re-fetched shortly before they do.

    Args:
        fetch: returns ``(credentials, expires_at)``; ``expires_at`` is a unix timestamp
            (``time.time()`` scale) or ``None`` for "never expires".
        refresh_before: seconds before expiry at which a refresh is attempted.
        retry_interval: after a failed refresh, seconds to wait before calling ``fetch`` again
            while the old credentials are still valid (so a down metadata service is not hit on
            every request).
        clock: wall clock, injectable for tests.
    """

    def __init__(
        self,
        fetch: Fetch,
        refresh_before: float = 300.0,
        *,
        retry_interval: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if refresh_before < 0 or retry_interval < 0:
            raise ConfigError("refresh_before and retry_interval must be >= 0")
        self._fetch = fetch
        self._refresh_before = refresh_before
        self._retry_interval = retry_interval
        self._clock = clock
        # One lock: concurrent callers wait for the single in-flight fetch instead of each
        # hitting the credentials service (single flight).
        self._lock = threading.Lock()
        self._current: Credentials | None = None
        self._expires_at: float | None = None
        self._next_attempt = 0.0

    def _usable(self, now: float, margin: float) -> Credentials | None:
        """The cached credentials if they stay valid for ``margin`` more seconds, else None."""
        current = self._current
        if current is None or (self._expires_at is not None and now >= self._expires_at - margin):
            return None
        return current

    def get_credentials(self) -> Credentials:
        """Return cached credentials, refreshing them first when they are about to expire.

        Raises:
            CredentialsError: the refresh failed and no still-valid credentials are cached.
        """
        with self._lock:
            now = self._clock()
            fresh = self._usable(now, self._refresh_before)
            if fresh is not None:
                return fresh
            still_valid = self._usable(now, 0.0)
            if still_valid is not None and now < self._next_attempt:
                return still_valid  # a refresh failed moments ago; don't hammer fetch
            try:
                credentials, expires_at = self._fetch()
                if not isinstance(credentials, Credentials):
                    raise TypeError(f"fetch returned {type(credentials).__name__}")
                if expires_at is not None and expires_at <= now:
                    raise CredentialsError("fetch returned already-expired credentials")
            except Exception as exc:
                self._next_attempt = now + self._retry_interval
                if still_valid is not None:
                    # Only the exception type is logged: fetchers may put secrets in messages.
                    _log.warning(
                        "credentials refresh failed (%s); keeping the current credentials",
                        type(exc).__name__,
                    )
                    return still_valid
                raise CredentialsError(
                    f"credentials refresh failed ({type(exc).__name__}) and no valid "
                    "credentials are cached"
                ) from exc
            self._current = credentials
            self._expires_at = expires_at
            self._next_attempt = 0.0
            return credentials

    def __repr__(self) -> str:
        current = self._current
        shown = "None" if current is None else repr(current)
        return f"RefreshingCredentialsProvider(current={shown}, expires_at={self._expires_at})"


def resolve_credentials(
    access_key_id: str | None = None,
    access_key_secret: str | None = None,
    security_token: str | None = None,
    provider: CredentialsProvider | None = None,
) -> CredentialsProvider:
    """Pick the provider from constructor-style arguments.

    - ``provider`` given: it is used, and no explicit key may be given too.
    - key id and secret given: a ``StaticCredentialsProvider``.
    - nothing given: an ``EnvironmentCredentialsProvider`` (reads the variables per request).

    Raises:
        ConfigError: ambiguous or incomplete arguments (names the missing one).
    """
    explicit = access_key_id is not None or access_key_secret is not None
    if provider is not None:
        if explicit or security_token is not None:
            raise ConfigError("pass either credentials_provider or explicit access keys, not both")
        if not callable(getattr(provider, "get_credentials", None)):
            raise ConfigError("credentials_provider must have a get_credentials() method")
        return provider
    if explicit:
        if not access_key_id:
            raise ConfigError("access_key_id is missing")
        if not access_key_secret:
            raise ConfigError("access_key_secret is missing")
        return StaticCredentialsProvider(
            Credentials(access_key_id, access_key_secret, security_token)
        )
    if security_token is not None:
        raise ConfigError("security_token given without access_key_id and access_key_secret")
    return EnvironmentCredentialsProvider()
