"""The operator's ``yai-spool`` commands over spool files, in the order ``--help`` lists them.

Owns :data:`SPOOL_COMMANDS` and :func:`register_spool_commands` (``yai_spool.cli.root`` calls it
once). Each command group lives in its own module over the shared helpers of
:mod:`yai_spool.cli.common`:

- :mod:`~yai_spool.cli.status`: ``status`` (the verdicts, :mod:`yai_spool.ops.health`)
- :mod:`~yai_spool.cli.inspection`: ``peek``, ``export`` (records: :mod:`yai_spool.cli.records`)
- :mod:`~yai_spool.cli.replay`: ``replay`` (and ``--send-now``)
- :mod:`~yai_spool.cli.maintenance`: ``purge``, ``vacuum``
- :mod:`~yai_spool.cli.doctor`: ``doctor``

The exit codes (stable; scripts rely on them) are :mod:`yai_spool.cli.exit_codes`; this module
re-exports :class:`ExitCode` and :data:`EXIT_CODES` for the release-1 path
``yai_spool.cli_spool``.

Invariants shared by every command:

- Reading commands (``status``, ``peek``, ``export``, ``doctor``) open spools read-only and are
  safe on a live spool while producers append and a flusher ships. Only ``replay``, ``purge``
  and ``vacuum`` open a spool for writing, only through the ``Spool`` API, never create a
  missing spool, and refuse to run as root on a spool another user owns.
- ``vacuum`` and ``replay --send-now`` take the spool's flusher lock for their duration and are
  refused while another process holds it (``vacuum --force`` skips the check).
- No secret is ever printed: only the masked access key id (``LTAI****``) appears in output.
- ``--json`` prints exactly one JSON document on stdout (JSON lines for record streams:
  ``peek``, ``export``); progress bars, prompts and warnings go to stderr.
- Nothing here knows the spool's SQL schema: records are read through ``Spool.queued`` /
  ``Spool.dead_letters`` on a read-only handle.
- Records are only deleted by SLS answering 200 (``replay --send-now``) or by an explicit,
  confirmed ``purge``.
"""

from __future__ import annotations

from typing import Final

import typer

from yai_spool.cli.common import SpoolCommand
from yai_spool.cli.doctor import DOCTOR
from yai_spool.cli.exit_codes import EXIT_CODES, ExitCode
from yai_spool.cli.inspection import EXPORT, PEEK
from yai_spool.cli.maintenance import PURGE, VACUUM
from yai_spool.cli.replay import REPLAY
from yai_spool.cli.status import STATUS

__all__ = ["EXIT_CODES", "SPOOL_COMMANDS", "ExitCode", "register_spool_commands"]

#: The spool commands in the order ``yai-spool --help`` lists them.
SPOOL_COMMANDS: Final[tuple[SpoolCommand, ...]] = (
    STATUS,
    PEEK,
    REPLAY,
    EXPORT,
    PURGE,
    VACUUM,
    DOCTOR,
)


def register_spool_commands(app: typer.Typer) -> None:
    """Add the spool commands to the ``yai-spool`` app (called once by ``yai_spool.cli.root``)."""
    for command in SPOOL_COMMANDS:
        command.register(app)
