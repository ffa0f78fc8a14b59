"""The exit codes of the spool commands: one number per outcome, stable for scripts.

Owns :class:`ExitCode`, the verdict -> code mapping (:data:`VERDICT_EXIT`), the meanings
``--help`` lists (:data:`EXIT_CODES`) and the code sets several commands share.

Exit codes (``ExitCode``; stable, scripts may rely on them; with several spools the worst wins):

====  =====================  ==================================================================
0     ok                     healthy / the command did what was asked
1     error                  unexpected failure (I/O error, bug); the message says which
2     usage                  bad command line (unknown option, bad duration or time)
3     lagging                the oldest waiting record is older than --lag-threshold
4     stalled                a flusher runs but deliveries keep failing or nothing ships
5     no-flusher             records wait and no process ships them
6     blocked-credentials    SLS refuses the credentials/destination; a human must fix it
7     corrupt                not a readable spool, or an unacknowledged quarantine or
                             data-loss event (a damaged WAL, records missing)
8     permission-denied      the spool exists but this user cannot read it
9     missing                no spool at that path (or no ``*.spool`` file in a directory)
10    refused                a confirmation is needed (--yes / --force) or another flusher
                             holds the spool; nothing was changed
11    checks-failed          ``doctor``: at least one check failed
12    send-failed            ``replay --send-now``: SLS did not accept everything (kept)
13    not-configured         credentials, endpoint or --config file missing or invalid
14    dropping               a record was dropped within --drop-window (spool or disk full,
                             read-only disk ...): records are being lost now
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

from yai_spool.ops.health import Verdict

__all__ = ["COMMON_EXITS", "EXIT_CODES", "UNUSABLE_EXITS", "VERDICT_EXIT", "ExitCode"]


class ExitCode(IntEnum):
    """Process exit codes of the spool commands (see the module docstring)."""

    OK = 0
    ERROR = 1
    USAGE = 2
    LAGGING = 3
    STALLED = 4
    NO_FLUSHER = 5
    BLOCKED_CREDENTIALS = 6
    CORRUPT = 7
    PERMISSION_DENIED = 8
    MISSING = 9
    REFUSED = 10
    CHECKS_FAILED = 11
    SEND_FAILED = 12
    NOT_CONFIGURED = 13
    DROPPING = 14


#: The verdict -> exit code mapping of ``status`` (and of any command that meets the verdict).
VERDICT_EXIT: Final[dict[Verdict, ExitCode]] = {
    Verdict.OK: ExitCode.OK,
    Verdict.LAGGING: ExitCode.LAGGING,
    Verdict.STALLED: ExitCode.STALLED,
    Verdict.NO_FLUSHER: ExitCode.NO_FLUSHER,
    Verdict.BLOCKED_CREDENTIALS: ExitCode.BLOCKED_CREDENTIALS,
    Verdict.DROPPING: ExitCode.DROPPING,
    Verdict.CORRUPT: ExitCode.CORRUPT,
    Verdict.PERMISSION_DENIED: ExitCode.PERMISSION_DENIED,
    Verdict.MISSING: ExitCode.MISSING,
}

#: (code, meaning) as ``--help`` shows them.
EXIT_CODES: Final[tuple[tuple[ExitCode, str], ...]] = (
    (ExitCode.OK, "ok / done"),
    (ExitCode.ERROR, "unexpected error"),
    (ExitCode.USAGE, "bad command line"),
    (ExitCode.LAGGING, "lagging"),
    (ExitCode.STALLED, "stalled"),
    (ExitCode.NO_FLUSHER, "no-flusher"),
    (ExitCode.BLOCKED_CREDENTIALS, "blocked-credentials"),
    (ExitCode.CORRUPT, "corrupt"),
    (ExitCode.PERMISSION_DENIED, "permission denied"),
    (ExitCode.MISSING, "missing spool"),
    (ExitCode.REFUSED, "refused: needs --yes/--force, or another flusher holds the spool"),
    (ExitCode.CHECKS_FAILED, "doctor: a check failed"),
    (ExitCode.SEND_FAILED, "replay --send-now: SLS did not accept everything (records kept)"),
    (ExitCode.NOT_CONFIGURED, "credentials, endpoint or --config missing or invalid"),
    (ExitCode.DROPPING, "dropping: a record was dropped within --drop-window"),
)

# Keys the record mapper writes by default (yai_spool.handlers.mapping: LogFields.level /


#: Every command can end with these.
COMMON_EXITS: Final = (ExitCode.OK, ExitCode.ERROR, ExitCode.USAGE)
#: A command that opens one named spool can find it unusable in these ways.
UNUSABLE_EXITS: Final = (ExitCode.CORRUPT, ExitCode.PERMISSION_DENIED, ExitCode.MISSING)
