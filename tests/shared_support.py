"""Test helpers shared by several test folders (a module, not conftest, so tests can import it).

Importable as ``shared_support`` from every test folder: pytest puts ``tests/`` on
``sys.path`` for the root conftest.py, as it puts each folder there for its own
``*_support.py``. Fixtures shared by several folders live in tests/conftest.py instead.
"""

from __future__ import annotations

from typing import Any

from yai_spool.emulator import Emulator, EmulatorConfig

__all__ = ["SDK_DEFAULT_FIELDS", "sts_emulator"]

#: The official SDK's default record fields, in the order a record's contents carry them
#: (after ``message``). Written out here, not read from the library, so a library change
#: to the order or the set fails the mapping and end-to-end tests that use it.
SDK_DEFAULT_FIELDS = (
    "name",
    "levelname",
    "funcName",
    "module",
    "pathname",
    "lineno",
    "process",
    "processName",
    "thread",
    "threadName",
)


def sts_emulator(
    permanent: tuple[str, str], temporary: tuple[str, str], token: str, **options: Any
) -> Emulator:
    """A verifying emulator (not started) with one permanent key and one STS-only key.

    ``permanent`` and ``temporary`` are ``(access key id, secret)``; the temporary key is
    accepted only together with the security token ``token``, as a real STS key is.
    ``options`` are further ``EmulatorConfig`` fields.
    """
    (key_id, secret), (tmp_key_id, tmp_secret) = permanent, temporary
    config = EmulatorConfig(
        access_keys={key_id: secret, tmp_key_id: tmp_secret},
        sts_tokens={token: tmp_key_id},
        **options,
    )
    return Emulator(config)
