"""Where a spooled record goes: the destination key stored beside every spool row.

Owns: the mapping between a destination (project, logstore, topic, source, tags) and the
opaque ``dest`` string the spool groups rows by. One lease returns rows of one ``dest``
only, so every batch becomes exactly one PutLogs LogGroup.

Invariants:
- ``encode_dest`` is canonical: equal destinations give byte-equal strings (sorted tags,
  compact JSON), so rows with the same destination always batch together.
- The key carries names only, never the endpoint or credentials: those belong to the
  flusher's configuration (the spool must never hold a secret, and an operator can repoint
  a spool at another endpoint without rewriting it).
- ``decode_dest`` is total over what ``encode_dest`` produced and raises ``ValueError``
  on anything else (a hand-edited or foreign row), which the flusher dead-letters.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["DestKey", "decode_dest", "encode_dest"]


@dataclass(frozen=True, slots=True)
class DestKey:
    """The decoded destination of a spool row."""

    project: str
    logstore: str
    topic: str = ""
    source: str = ""
    tags: tuple[tuple[str, str], ...] = ()


def encode_dest(
    project: str,
    logstore: str,
    topic: str = "",
    source: str = "",
    tags: Iterable[tuple[str, str]] | None = None,
) -> str:
    """Return the canonical ``dest`` string for a destination."""
    tag_list = sorted((str(k), str(v)) for k, v in (tags or ()))
    return json.dumps(
        [project, logstore, topic, source, tag_list], ensure_ascii=False, separators=(",", ":")
    )


def decode_dest(dest: str) -> DestKey:
    """Parse a ``dest`` string written by :func:`encode_dest`."""
    try:
        project, logstore, topic, source, tags = json.loads(dest)
        pairs = tuple((str(k), str(v)) for k, v in tags)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a yai-spool destination key: {dest[:80]!r}") from exc
    if not all(isinstance(x, str) for x in (project, logstore, topic, source)):
        raise ValueError(f"not a yai-spool destination key: {dest[:80]!r}")
    return DestKey(project, logstore, topic, source, pairs)
