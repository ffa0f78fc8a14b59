"""Where the daemon's access keys come from: systemd credentials, else the environment.

Owns the ``$CREDENTIALS_DIRECTORY`` convention of the units (``LoadCredential=`` copies each
file into a private, read-only, per-service directory):

- ``sls-access-key-id``      the AccessKey ID
- ``sls-access-key-secret``  the AccessKey secret
- ``sls-security-token``     optional STS token

Without those files the ``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``..._SECRET`` /
``ALIBABA_CLOUD_SECURITY_TOKEN`` variables are used. Both are read when a request is signed,
so a rotated key is picked up without a restart.

Invariants: no secret is ever logged, printed or put in a ``repr`` or exception message (only
file and variable names are); the configuration file never holds credentials.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from yai_spool.sls.credentials import (
    ENV_ACCESS_KEY_ID,
    ENV_ACCESS_KEY_SECRET,
    Credentials,
    CredentialsProvider,
    EnvironmentCredentialsProvider,
)
from yai_spool.sls.errors import ConfigError

__all__ = [
    "ID_FILE",
    "SECRET_FILE",
    "TOKEN_FILE",
    "CredentialsDirectoryProvider",
    "daemon_credentials",
]

ID_FILE = "sls-access-key-id"
SECRET_FILE = "sls-access-key-secret"  # noqa: S105 - a file name
TOKEN_FILE = "sls-security-token"  # noqa: S105 - a file name


class CredentialsDirectoryProvider:
    """Credentials from files in a systemd credentials directory, read at every call."""

    __slots__ = ("directory",)

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _read(self, name: str) -> str:
        try:
            return (self.directory / name).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return ""
        except OSError as exc:  # the message names the file, never its content
            raise ConfigError(
                f"cannot read credential {name} in $CREDENTIALS_DIRECTORY: {exc.strerror}"
            ) from None

    def get_credentials(self) -> Credentials:
        key_id, secret = self._read(ID_FILE), self._read(SECRET_FILE)
        if not key_id or not secret:
            missing = ID_FILE if not key_id else SECRET_FILE
            raise ConfigError(f"credential {missing} is missing or empty in $CREDENTIALS_DIRECTORY")
        return Credentials(key_id, secret, self._read(TOKEN_FILE) or None)

    def __repr__(self) -> str:
        return f"CredentialsDirectoryProvider({str(self.directory)!r})"


def daemon_credentials(environ: Mapping[str, str] | None = None) -> CredentialsProvider:
    """The provider the daemon signs with, checked once so a missing key fails at start.

    Raises:
        ConfigError: no usable credentials, naming what to set (never a value).
    """
    env = os.environ if environ is None else environ
    directory = env.get("CREDENTIALS_DIRECTORY", "")
    provider: CredentialsProvider
    if directory and (Path(directory) / ID_FILE).exists():
        provider = CredentialsDirectoryProvider(Path(directory))
        origin = f"$CREDENTIALS_DIRECTORY ({directory})"
    else:
        # os.environ itself is read at every call (None); a test-provided mapping is fixed.
        provider = EnvironmentCredentialsProvider(None if environ is None else env)
        origin = f"{ENV_ACCESS_KEY_ID} / {ENV_ACCESS_KEY_SECRET}"
    try:
        provider.get_credentials()
    except ConfigError as exc:
        raise ConfigError(
            f"credentials: none usable from {origin} ({exc}); add LoadCredential="
            f"{ID_FILE}:/etc/yai-spool/credentials/{ID_FILE} and LoadCredential={SECRET_FILE}:"
            f"/etc/yai-spool/credentials/{SECRET_FILE} to the unit, or set {ENV_ACCESS_KEY_ID} "
            f"and {ENV_ACCESS_KEY_SECRET}"
        ) from None
    return provider
