"""What the emulator must know about a LogGroup to enforce limits, fast.

Owns: ``scan_log_group(raw) -> GroupStats`` (log count, topic, source, distinct content
keys, largest value, time ranges) and the guarantee that a body it accepts is one
``encoding.decode_log_group`` decodes. It never builds ``Log`` objects: the emulator stores
the raw bytes and decodes them on read.

Why this exists: ``decode_log_group`` is pure Python (~75k logs/s on the 2-core CI machine),
which would make the emulator slower than the clients it tests. When ``google.protobuf``
with the upb (C) backend is importable (it is a test dependency), the scan parses the body
twice in C:

1. with a *faithful* schema (the LogGroup of sls-protocol.md §4, values as bytes, every
   field the decoder knows, required fields as ``required``), then drops unknown fields and
   re-serialises: the size equals ``len(raw)`` only if nothing was unknown (e.g. a wrong
   wire type), duplicated or non-canonically encoded, and ``IsInitialized()`` proves every
   required field is present. Together with the Time range check below: the decoder's
   structural rules hold.
2. with a *merged* schema in which ``Logs`` is a singular message: protobuf merges repeated
   occurrences of a singular message, so the 4096 logs fold into one message whose
   ``Contents`` map holds every distinct key and whose repeated ``Time``/``Time_ns`` hold
   every timestamp, all produced in C.

Any doubt (no upb, a check above failing, a key that is not UTF-8) falls back to
``decode_log_group`` itself, which either raises the precise ``DecodeError`` or yields the
stats the slow way. So the fast path can only be *more conservative*, never more lenient,
than the decoder; tests/emulator/test_scan.py checks both paths agree on fuzzed bodies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from yai_spool.sls.encoding import decode_log_group
from yai_spool.sls.model import LogGroup

try:  # optional: a test dependency; without it every scan takes the decoder's path
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    from google.protobuf.internal import api_implementation
    from google.protobuf.message import DecodeError as PbDecodeError
except ImportError:  # pragma: no cover - protobuf is installed wherever tests run
    api_implementation = None

__all__ = ["FAST_SCAN", "GroupStats", "scan_log_group", "stats_of"]

_UINT32_MAX = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class GroupStats:
    """Facts about one LogGroup. ``max_value_bytes`` is exact only when it matters: the
    scan may report ``0`` when ``raw_size <= value_limit`` made an oversized value
    impossible."""

    log_count: int
    topic: str
    source: str
    keys: frozenset[str]
    max_value_bytes: int
    max_time_ns: int
    min_time: int
    max_time: int


def stats_of(group: LogGroup) -> GroupStats:
    """Stats of an already-decoded group (the slow path, and poison checks)."""
    logs = group.logs
    times = [log.time for log in logs]
    return GroupStats(
        log_count=len(logs),
        topic=group.topic,
        source=group.source,
        keys=frozenset(k for log in logs for k, _ in log.contents),
        max_value_bytes=max((len(v) for log in logs for _, v in log.contents), default=0),
        max_time_ns=max((log.time_ns or 0 for log in logs), default=0),
        min_time=min(times, default=0),
        max_time=max(times, default=0),
    )


def _build_classes() -> tuple[Any, Any, Any] | None:
    if api_implementation is None or api_implementation.Type() != "upb":
        return None  # the pure-Python protobuf backend is slower than decode_log_group

    fdp = descriptor_pb2.FileDescriptorProto(
        name="yai_spool_emulator_scan.proto", package="yai_scan", syntax="proto2"
    )
    F = descriptor_pb2.FieldDescriptorProto
    req, opt, rep = F.LABEL_REQUIRED, F.LABEL_OPTIONAL, F.LABEL_REPEATED

    def message(name: str, *fields: tuple[str, int, int, int, str]) -> Any:
        msg = fdp.message_type.add(name=name)
        for fname, number, label, ftype, type_name in fields:
            field = msg.field.add(name=fname, number=number, label=label, type=ftype)
            if type_name:
                field.type_name = type_name
        return msg

    b, msg_t = F.TYPE_BYTES, F.TYPE_MESSAGE
    # Faithful schema. Strings are declared bytes: UTF-8 is checked by us (proto2 upb does
    # not), for the few distinct strings only.
    message("Content", ("Key", 1, req, b, ""), ("Value", 2, req, b, ""))
    message(
        "Log",
        # uint64, not uint32: upb truncates an oversized uint32 silently (and the truncated
        # varint can re-serialise to the same length); the range is checked on the merged
        # times instead, exactly like the decoder does.
        ("Time", 1, req, F.TYPE_UINT64, ""),
        ("Contents", 2, rep, msg_t, ".yai_scan.Content"),
        ("Time_ns", 4, opt, F.TYPE_FIXED32, ""),
    )
    message("LogTag", ("Key", 1, req, b, ""), ("Value", 2, req, b, ""))
    message(
        "LogGroup",
        ("Logs", 1, rep, msg_t, ".yai_scan.Log"),
        ("Reserved", 2, opt, b, ""),
        ("Topic", 3, opt, b, ""),
        ("Source", 4, opt, b, ""),
        ("MachineUUID", 5, opt, b, ""),
        ("LogTags", 6, rep, msg_t, ".yai_scan.LogTag"),
    )
    # Merged schema: Contents as a map (entry = Key 1 / Value 2, the Content layout).
    merged = message(
        "MergedLog",
        ("Time", 1, rep, F.TYPE_UINT64, ""),
        ("Contents", 2, rep, msg_t, ".yai_scan.MergedLog.ContentsEntry"),
        ("Time_ns", 4, rep, F.TYPE_FIXED32, ""),
    )
    entry = merged.nested_type.add(name="ContentsEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, label=opt, type=F.TYPE_STRING)
    entry.field.add(name="value", number=2, label=opt, type=b)
    message("MergedGroup", ("Logs", 1, opt, msg_t, ".yai_scan.MergedLog"))
    # Value sizes, only needed when the raw body is larger than the value limit.
    message("BlobLog", ("Contents", 2, rep, b, ""))
    message("BlobGroup", ("Logs", 1, opt, msg_t, ".yai_scan.BlobLog"))

    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)

    def cls(name: str) -> Any:
        return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"yai_scan.{name}"))

    return cls("LogGroup"), cls("MergedGroup"), cls("BlobGroup")


_CLASSES = _build_classes()
#: True when the C fast path is available (google.protobuf with the upb backend).
FAST_SCAN = _CLASSES is not None


def scan_log_group(raw: bytes, value_limit: int) -> tuple[GroupStats, LogGroup | None]:
    """Stats of a PutLogs body; the decoded group too when the slow path produced it.

    Raises:
        DecodeError: the body is not a LogGroup ``decode_log_group`` accepts.
    """
    if _CLASSES is not None:
        stats = _fast(raw, value_limit, *_CLASSES)
        if stats is not None:
            return stats, None
    group = decode_log_group(raw)
    return stats_of(group), group


def _fast(
    raw: bytes, value_limit: int, full_cls: Any, merged_cls: Any, blob_cls: Any
) -> GroupStats | None:
    """The C path; None means "cannot vouch, ask the decoder"."""
    try:
        full = full_cls()
        full.ParseFromString(raw)
        if not full.IsInitialized():
            return None
        full.DiscardUnknownFields()
        if full.ByteSize() != len(raw):
            return None
        merged = merged_cls()
        merged.ParseFromString(raw)
        logs = merged.Logs
        keys = frozenset(logs.Contents.keys())
        if not all(type(key) is str for key in keys):
            return None  # proto2 upb hands back bytes for a key that is not valid UTF-8
        topic = full.Topic.decode()
        source = full.Source.decode()
        for tag in full.LogTags:
            tag.Key.decode()
            tag.Value.decode()
        times = logs.Time
        if times and max(times) > _UINT32_MAX:
            return None
        if len(raw) > value_limit:
            # A value longer than the limit needs a raw body longer than the limit; only
            # then measure. Each blob is a whole Content (key + value + framing), an upper
            # bound of its value; if one exceeds the limit let the decoder measure exactly.
            blobs = blob_cls()
            blobs.ParseFromString(raw)
            contents = blobs.Logs.Contents
            if contents and max(map(len, contents)) > value_limit:
                return None
        return GroupStats(
            log_count=len(full.Logs),
            topic=topic,
            source=source,
            keys=keys,
            max_value_bytes=0,
            max_time_ns=max(logs.Time_ns, default=0),
            min_time=min(times, default=0),
            max_time=max(times, default=0),
        )
    except (PbDecodeError, UnicodeDecodeError, ValueError, RuntimeError):
        return None
