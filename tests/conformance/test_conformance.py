"""One conformance suite, every client we can run, one emulator.

Every sender of ``conformance_support.SENDERS`` delivers the same LogGroups to the emulator
over real HTTP on 127.0.0.1; what the emulator stored is read back and compared byte for
byte (decoded fields, and for one-request clients the decompressed body itself). Every
refusal must carry exactly one SLS errorCode and HTTP status (sls-protocol.md §3, §5-§7;
emulator choices in errors.py). Negatives a client can provoke through its public API run
through that client; defects no well-behaved client produces (a tampered body, a lying
compress type, a missing raw size) are hand-built with the protocol core and *re-signed*
with ``yai_spool.sls.signing``, so the intended defect is the only one.

Senders (31): SDK = official Python ``LogClient.put_logs``, 8 variants (V1/V4 x STS or not x
lz4/none); RP = official Rust ``aliyun-log-producer``, zstd, with and without STS; ours =
``PutLogsClient`` (v1 lz4/zstd/none, v4 deflate, v4+STS lz4, v1-sha256 lz4, v1-sha256+STS
deflate) and ``AsyncPutLogsClient`` (v1 lz4, v4 zstd, v1+STS none, v1-sha256 zstd); Node =
official Node.js clients: GW = ``@alicloud/sls20201230`` + ``@alicloud/gateway-sls`` (V1
hmac-sha256 lz4/deflate/gzip, V1+STS lz4, V4 lz4, V4+STS deflate), LOG = ``@alicloud/log``
(V1 hmac-sha1 uncompressed, with and without STS), ALY = ``aliyun-sdk`` (V1 hmac-sha1
deflate, with and without STS); raw = hand-built request via ``httpx``.

====================================  ===  ===  ====  =====  ===  ===  ===  =====  ==========
case                                  SDK  RP   sync  async  GW   LOG  ALY  raw    expected
====================================  ===  ===  ====  =====  ===  ===  ===  =====  ==========
unicode values and topic              yes  yes  yes   yes    yes  yes  (6)  --     byte-exact
empty values, empty topic/source      yes  yes  yes   yes    yes  yes  (6)  --     byte-exact
non-UTF-8 bytes                       yes  (1)  yes   yes    (1)  (1)  (1)  --     byte-exact
many keys (+ a duplicate key)         yes  yes  yes   yes    yes  (7)  (6)  --     byte-exact
nanoseconds times (incl. 0, absent)   (2)  yes  yes   yes    yes  yes  (6)  --     byte-exact
topic + source                        yes  yes  yes   yes    yes  yes  (6)  --     byte-exact
tags                                  (3)  (4)  yes   yes    yes  yes  (4)  --     byte-exact
wrong secret                          yes  yes  yes   yes    yes  yes  yes  --     401 Signa-
                                                                                   tureNotMatch
unknown access key id                 yes  yes  yes   yes    yes  yes  yes  --     401 Unauth.
request time 16 min slow / fast       (5)  (5)  yes   yes    (5)  (5)  (5)  --     400 Request-
                                                                                   TimeExpired
oversize body (> 10 MiB raw)          yes  yes  yes   yes    yes  yes  (8)  --     413 PostBo-
                                                                                   dyTooLarge
tampered body, V1 (MD5 as signed)     --   --   --    --     --   --   --   v1     400 Invali-
                                                                                   dContentMD5
tampered body + forged Content-MD5    --   --   --    --     --   --   --   v1     401
tampered body, V4                     --   --   --    --     --   --   --   v4     401
unknown x-log-compresstype            --   --   --    --     --   --   --   v1 v4  400
corrupt lz4 / corrupt zstd body       --   --   --    --     --   --   --   v1 v4  400
raw size != decompressed size         --   --   --    --     --   --   --   v1 v4  400
body is not a LogGroup                --   --   --    --     --   --   --   v1 v4  400
missing x-log-bodyrawsize             --   --   --    --     --   --   --   v1 v4  400
non-numeric x-log-bodyrawsize         --   --   --    --     --   --   --   v1 v4  400
====================================  ===  ===  ====  =====  ===  ===  ===  =====  ==========

The raw-request 400s are, in order: InvalidCompressType, PostBodyInvalid (x3),
MissingBodyRawSize, InvalidBodyRawSize. "yes" = every variant of that column. Extra signed
headers, x-log-meta-*, a missing Content-Type and the gzip offer are in test_signed_headers.py;
the Node.js signers on randomized input in test_node_signers.py.

(1) The API takes ``str`` values only (the producer's ``Log``; the Node.js schemas declare
   ``Value`` a protobuf string): non-UTF-8 bytes cannot be expressed.
(2) The SDK always writes ``Time_ns`` and invents the current sub-second value when a log has
   none or 0 (``LogItem``): the suite checks the invented value is a valid 0..999,999,999
   and compares everything else, including the body bytes with that value substituted.
(3) Every SDK variant, plus a dedicated test: tags through the SDK, V4 with an STS token.
(4) No tags argument. The producer adds its own ``__pack_id__`` tag, which every producer
   round trip checks (exactly that tag, ``{16 hex}-{16 hex}``); aliyun-sdk's API has none.
(5) None of these clients lets the caller set its signing clock. Ours take it from
   ``yai_spool.sls.request.utc_now`` (the request builder's clock), which the test moves.
(6) aliyun-sdk's schema has no ``Time_ns``: its logs arrive without one (checked: absent),
   everything else byte-exact (compared decoded: its encoder omits an empty Topic/Source,
   as does @alicloud/log's).
(7) @alicloud/log takes a log's contents as an object: duplicate keys cannot be expressed.
(8) aliyun-sdk refuses a protobuf body over 3 MiB itself, before sending.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from conformance_support import (
    ACCESS_KEY_ID,
    ACCESS_KEY_SECRET,
    OUR_SENDER_IDS,
    PACK_ID_TAG,
    REGION,
    SENDER_IDS,
    STS_KEY_ID,
    Capabilities,
    Sender,
    SendFailed,
)

from yai_spool.emulator import Emulator, StoredLog
from yai_spool.sls.compression import Compression, compress
from yai_spool.sls.credentials import Credentials
from yai_spool.sls.encoding import decode_log_group, encode_log_group
from yai_spool.sls.errors import ErrorCode
from yai_spool.sls.model import ContentValue, Log, LogGroup
from yai_spool.sls.request import Destination, Endpoint, PreparedRequest, build_put_logs_request
from yai_spool.sls.signing import content_md5, sign_v1, sign_v4

PROJECT = "conformance"
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
CREDS = Credentials(ACCESS_KEY_ID, ACCESS_KEY_SECRET)
MakeSender = Callable[..., Sender]

_store_ids = itertools.count()


def _logstore(case: str, sender_id: str = "raw") -> str:
    """A fresh logstore per test: isolation on the shared module emulator."""
    return f"{case}-{sender_id}-{next(_store_ids)}".replace("_", "-")[:63]


# -- the round-trip corpus -----------------------------------------------------------------
# Keys follow the SLS key rule ([A-Za-z_][A-Za-z0-9_]*), which the emulator enforces;
# unicode goes into values, topic and tags. Every log has distinct contents, so logs that a
# batching client reorders can be matched one to one.

GROUPS: dict[str, LogGroup] = {
    "unicode": LogGroup(
        logs=(
            Log(T0, (("msg", "日志 ✓ — emoji 🚀"), ("level", "INFO")), 123_456_789),
            Log(T0 + 1, (("msg", "Ünïcödé \u2028 line sep \U0010ffff"), ("k", "\x00nul")), 1),
        ),
        topic="topic-✓",
        source="10.0.0.1",
    ),
    "empty_values": LogGroup(
        logs=(
            Log(T0, (("empty", ""), ("msg", "x"), ("also_empty", "")), 5),
            Log(T0, (("only_empty", ""),), 6),
        ),
    ),
    "non_utf8": LogGroup(
        logs=(
            Log(T0, (("bin", b"\xff\x00bin\xfe"), ("msg", b"ok")), 42),
            Log(T0, (("lone_surrogate", b"\xed\xa0\x80"), ("empty", b"")), 43),
        ),
        source="10.0.0.1",
    ),
    "many_keys": LogGroup(
        logs=tuple(
            Log(
                T0 + i,
                (*((f"key_{j}", f"value {i}-{j}") for j in range(200)), ("key_0", f"dup {i}")),
                i + 1,
            )
            for i in range(3)
        ),
        source="10.0.0.1",
    ),
    "nanoseconds": LogGroup(
        logs=(
            Log(T0, (("msg", "max ns"),), 999_999_999),
            Log(T0, (("msg", "min ns"),), 1),
            Log(T0, (("msg", "zero ns"),), 0),
            Log(T0, (("msg", "no ns"),), None),
            Log(2**32 - 1, (("msg", "last second of uint32"),), 500),
        ),
        source="10.0.0.1",
    ),
    "topic_source": LogGroup(
        logs=(Log(T0, (("msg", "routed"),), 7),),
        topic="my-topic ✓",
        source="192.168.7.7",
    ),
    "tags": LogGroup(
        logs=(Log(T0, (("msg", "tagged"),), 8),),
        topic="tagged",
        source="192.168.7.8",
        tags=(("env", "test"), ("host", "web-1"), ("ünï", "✓"), ("empty", "")),
    ),
}

# One log: a refused producer send is then exactly one request, like every other client's.
ONE_LOG = LogGroup(logs=(Log(T0, (("msg", "refuse me"),), 9),), source="10.0.0.1")

_PACK_ID = re.compile(r"[0-9A-F]{16}-[0-9A-F]{16}")


def _cannot_carry(caps: Capabilities, group: LogGroup) -> str | None:
    """Why a client's public API cannot express ``group``, or None when it can."""
    if not caps.bytes_values and any(
        isinstance(v, bytes) for log in group.logs for _, v in log.contents
    ):
        return "its API takes str values only; non-UTF-8 bytes cannot be expressed"
    if not caps.tags and group.tags:
        return "its API cannot set LogTags"
    if not caps.duplicate_keys and any(
        len({k for k, _ in log.contents}) < len(log.contents) for log in group.logs
    ):
        return "its API takes a log's contents as a mapping; duplicate keys cannot be expressed"
    return None


def _as_bytes(contents: tuple[tuple[str, ContentValue], ...]) -> tuple[tuple[str, bytes], ...]:
    return tuple((k, v if isinstance(v, bytes) else v.encode()) for k, v in contents)


def _bytes_group(group: LogGroup) -> LogGroup:
    """``group`` as ``decode_log_group`` returns it (values as bytes)."""
    logs = tuple(Log(log.time, _as_bytes(log.contents), log.time_ns) for log in group.logs)
    return LogGroup(logs, group.topic, group.source, group.tags)


def _as_received(caps: Capabilities, group: LogGroup, stored: list[StoredLog]) -> LogGroup:
    """``group`` as this client legitimately delivers it (only the SDK's invented Time_ns).

    A client that invents Time_ns for logs without one (or with 0) must send a valid value;
    it is checked here and substituted, so the comparison stays exact for everything else.
    A client whose schema has no Time_ns (aliyun-sdk) delivers every log without one.
    """
    if not caps.time_ns:
        logs = tuple(Log(log.time, log.contents, None) for log in group.logs)
        return LogGroup(logs, group.topic, group.source, group.tags)
    if caps.exact_time_ns:
        return group
    assert caps.one_request, "an inventing client must keep log order to be compared"
    logs = []
    for sent, row in zip(group.logs, stored, strict=True):
        if sent.time_ns:
            logs.append(sent)
            continue
        assert row.time_ns is not None
        assert 0 <= row.time_ns <= 999_999_999
        logs.append(Log(sent.time, sent.contents, row.time_ns))
    return LogGroup(tuple(logs), group.topic, group.source, group.tags)


def _check_wire(emulator: Emulator, logstore: str, sender: Sender, *, requests: int) -> None:
    """The requests really were what the sender's id claims (signature, key, compression)."""
    summaries = emulator.requests(PROJECT, logstore)
    if sender.caps.one_request:
        assert len(summaries) == requests
    else:  # the producer may split a group into several batches
        assert len(summaries) >= 1
    for summary in summaries:
        assert summary.outcome == "accepted"
        assert summary.auth_version == sender.wire.auth_version
        assert summary.access_key_id == sender.wire.access_key_id
        assert summary.compress_type == sender.wire.compress_type
        assert ("x-acs-security-token" in summary.headers) == sender.wire.sts
        assert summary.headers.get("x-log-signaturemethod") == sender.wire.signature_method
        assert re.fullmatch(r"[0-9A-F]{24}", summary.request_id)


@pytest.mark.parametrize("sender_id", SENDER_IDS)
@pytest.mark.parametrize("case", list(GROUPS))
def test_round_trip_is_byte_exact(
    emulator: Emulator, make_sender: MakeSender, sender_id: str, case: str
) -> None:
    sender = make_sender(sender_id)
    group = GROUPS[case]
    reason = _cannot_carry(sender.caps, group)
    if reason is not None:
        pytest.skip(f"{sender_id}: {reason}")
    logstore = _logstore(case, sender_id)

    sender.send(PROJECT, logstore, group)

    stored = emulator.logs(PROJECT, logstore)
    _check_wire(emulator, logstore, sender, requests=1)
    assert all(s.project == PROJECT and s.logstore == logstore for s in stored)
    expected = _as_received(sender.caps, group, stored)
    want = [(log.time, log.time_ns, _as_bytes(log.contents)) for log in expected.logs]
    got = [(s.time, s.time_ns, s.contents) for s in stored]
    if sender.caps.one_request:
        assert got == want  # order, duplicates and absent Time_ns (None) included
    else:  # a batching client may split and reorder; contents are unique per log

        def by_contents(row: tuple[int, int | None, tuple[tuple[str, bytes], ...]]) -> object:
            return row[2]

        assert sorted(got, key=by_contents) == sorted(want, key=by_contents)
    for row in stored:
        assert (row.topic, row.source) == (group.topic, group.source)
        own = tuple(tag for tag in row.tags if tag[0] not in sender.caps.added_tags)
        assert own == group.tags
        added = [tag for tag in row.tags if tag[0] in sender.caps.added_tags]
        assert [name for name, _ in added] == list(sender.caps.added_tags)
        for name, value in added:
            assert name == PACK_ID_TAG
            assert _PACK_ID.fullmatch(value), value
    if sender.caps.one_request:
        ((_, raw),) = emulator.raw_batches(PROJECT, logstore)
        if sender.caps.same_encoding:
            # The decompressed body the emulator received is exactly our encoding of the
            # group: every field, its order and presence (Topic/Source "" written, Time_ns
            # absent).
            assert raw == encode_log_group(expected)
        else:
            # Another encoder (e.g. Topic omitted when empty): the same LogGroup, decoded.
            assert decode_log_group(raw) == _bytes_group(expected)


def test_sdk_v4_with_sts_token_carries_tags(emulator: Emulator, make_sender: MakeSender) -> None:
    sender = make_sender("sdk-v4-sts-lz4")
    logstore = _logstore("sdk-tags")
    group = GROUPS["tags"]

    sender.send(PROJECT, logstore, group)

    (row,) = emulator.logs(PROJECT, logstore)
    assert row.tags == group.tags
    assert (row.topic, row.source, row.contents) == (
        group.topic,
        group.source,
        (("msg", b"tagged"),),
    )
    (summary,) = emulator.requests(PROJECT, logstore)
    assert (summary.auth_version, summary.access_key_id) == ("v4", STS_KEY_ID)
    assert summary.headers["x-acs-security-token"] == "<present>"
    assert summary.headers["x-log-date"].endswith("Z")  # V4's ISO date, signed


# -- negatives through the clients' public APIs --------------------------------------------


def _refused(
    emulator: Emulator,
    sender: Sender,
    logstore: str,
    status: int,
    code: ErrorCode,
    *,
    group: LogGroup = ONE_LOG,
) -> None:
    """One send, one request, one refusal with exactly ``status`` and ``code``; nothing stored."""
    with pytest.raises(SendFailed) as info:
        sender.send(PROJECT, logstore, group)
    assert info.value.error_code == code
    assert info.value.status in (status, None)  # None: the client does not expose it
    (summary,) = emulator.requests(PROJECT, logstore)  # no retry behind the caller's back
    assert (summary.status, summary.error_code) == (status, code)
    assert summary.request_id == info.value.request_id
    assert emulator.count(PROJECT, logstore) == 0


@pytest.mark.parametrize(
    ("case", "identity", "code"),
    [
        ("wrong-secret", {"secret": "not-the-secret"}, ErrorCode.SignatureNotMatch),
        ("unknown-key", {"key_id": "LTAI5tNobodyKnowsMe"}, ErrorCode.Unauthorized),
    ],
)
@pytest.mark.parametrize("sender_id", SENDER_IDS)
def test_a_bad_identity_is_refused_with_401(  # noqa: PLR0917 - pytest passes fixtures by name
    emulator: Emulator,
    make_sender: MakeSender,
    sender_id: str,
    case: str,
    identity: dict[str, str],
    code: ErrorCode,
) -> None:
    """A wrong secret is SignatureNotMatch, an unknown key id Unauthorized: both 401."""
    sender = make_sender(sender_id, **identity)
    _refused(emulator, sender, _logstore(case, sender_id), 401, code)


@pytest.mark.parametrize("sender_id", SENDER_IDS)
def test_oversize_body_is_post_body_too_large(
    emulator: Emulator, make_sender: MakeSender, sender_id: str
) -> None:
    # One log over the 10 MiB raw limit, every value under the 1 MiB value limit: a batching
    # client cannot split it, so every client must put it on the wire and be refused.
    value = "x" * (960 * 1024)
    big = LogGroup(logs=(Log(T0, tuple((f"part_{i}", value) for i in range(11)), 1),))
    logstore = _logstore("oversize", sender_id)
    sender = make_sender(sender_id)
    if sender.caps.max_body_bytes is not None:
        pytest.skip(f"{sender_id} refuses bodies over {sender.caps.max_body_bytes} bytes itself")
    _refused(emulator, sender, logstore, 413, ErrorCode.PostBodyTooLarge, group=big)


@pytest.mark.parametrize("offset_minutes", [-16, 16], ids=["slow-clock", "fast-clock"])
@pytest.mark.parametrize("sender_id", OUR_SENDER_IDS)
def test_skewed_clock_is_request_time_expired(
    emulator: Emulator,
    make_sender: MakeSender,
    monkeypatch: pytest.MonkeyPatch,
    sender_id: str,
    offset_minutes: int,
) -> None:
    skewed = datetime.now(UTC) + timedelta(minutes=offset_minutes)
    monkeypatch.setattr("yai_spool.sls.request.utc_now", lambda: skewed)
    logstore = _logstore("skew", sender_id)
    _refused(emulator, make_sender(sender_id), logstore, 400, ErrorCode.RequestTimeExpired)


@pytest.mark.parametrize("sender_id", ["client-v1-lz4", "async-v4-zstd"])
def test_clock_inside_the_window_is_accepted(
    emulator: Emulator, make_sender: MakeSender, monkeypatch: pytest.MonkeyPatch, sender_id: str
) -> None:
    """Control for the skew case: 14 minutes off is still inside the 15-minute window."""
    skewed = datetime.now(UTC) - timedelta(minutes=14)
    monkeypatch.setattr("yai_spool.sls.request.utc_now", lambda: skewed)
    logstore = _logstore("skew-ok", sender_id)
    make_sender(sender_id).send(PROJECT, logstore, ONE_LOG)
    assert emulator.count(PROJECT, logstore) == 1


# -- negatives no well-behaved client produces: hand-built, re-signed requests -------------


def _prepare(
    emulator: Emulator, sig: str, logstore: str, compression: Compression = Compression.LZ4
) -> PreparedRequest:
    destination = Destination(Endpoint.parse(emulator.url), PROJECT, logstore)
    return build_put_logs_request(
        destination,
        ONE_LOG,
        CREDS,
        compression=compression,
        signature_version="v4" if sig == "v4" else "v1",
        region=REGION if sig == "v4" else None,
    )


def _resigned(
    prepared: PreparedRequest,
    *,
    body: bytes | None = None,
    set_headers: dict[str, str] | None = None,
    drop: tuple[str, ...] = (),
) -> tuple[dict[str, str], bytes]:
    """Headers and body with the given changes, signed afresh like a real client would.

    V1 gets a new Content-MD5 for the body and a new signature over the changed headers; V4
    a new ``x-log-content-sha256``, ``x-log-date`` and signature. What remains wrong is only
    what the caller changed on purpose.
    """
    body = prepared.body if body is None else body
    changes = set_headers or {}
    removed = {name.lower() for name in (*drop, *changes)} | {"authorization", "content-md5"}
    headers = {k: v for k, v in prepared.headers.items() if k.lower() not in removed}
    headers.update(changes)
    query = dict(prepared.query)
    if prepared.signature_version == "v1":
        if body:
            headers["Content-MD5"] = content_md5(body)
        sign_v1(headers, CREDS, prepared.method, prepared.path, query)
    else:
        assert prepared.region is not None
        sign_v4(
            headers,
            CREDS,
            prepared.method,
            prepared.path,
            query,
            body,
            prepared.region,
            datetime.now(UTC),
        )
    return headers, body


def _post(prepared: PreparedRequest, headers: dict[str, str], body: bytes) -> httpx.Response:
    with httpx.Client(trust_env=False) as http:
        return http.post(prepared.url, headers=headers, content=body)


def _assert_refusal(
    emulator: Emulator, logstore: str, response: httpx.Response, status: int, code: ErrorCode
) -> None:
    """Exactly ``status`` + ``code`` in the SLS envelope, the request id recorded, no data."""
    assert response.status_code == status, response.text
    envelope = response.json()
    assert envelope["errorCode"] == code
    assert isinstance(envelope["errorMessage"], str)
    assert envelope["errorMessage"]
    (summary,) = emulator.requests(PROJECT, logstore)
    assert summary.request_id == response.headers["x-log-requestid"]
    assert emulator.count(PROJECT, logstore) == 0


SIGS = ["v1", "v4"]


@pytest.mark.parametrize("sig", SIGS)
def test_resigned_request_without_changes_is_accepted(emulator: Emulator, sig: str) -> None:
    """Control: re-signing alone is correct, so each defect below is the only defect."""
    logstore = _logstore("resign-control", sig)
    prepared = _prepare(emulator, sig, logstore)
    response = _post(prepared, *_resigned(prepared))
    assert response.status_code == 200, response.text
    assert response.content == b""
    assert re.fullmatch(r"[0-9A-F]{24}", response.headers["x-log-requestid"])
    assert emulator.count(PROJECT, logstore) == 1


def _flip_last_byte(body: bytes) -> bytes:
    return body[:-1] + bytes([body[-1] ^ 0x01])


def test_tampered_body_v1_is_invalid_content_md5(emulator: Emulator) -> None:
    # V1 signs Content-MD5, not the body: the signature still holds, the MD5 does not.
    logstore = _logstore("tampered-v1")
    prepared = _prepare(emulator, "v1", logstore, Compression.NONE)
    response = _post(prepared, prepared.headers, _flip_last_byte(prepared.body))
    _assert_refusal(emulator, logstore, response, 400, ErrorCode.InvalidContentMD5)


def test_tampered_body_with_forged_md5_is_signature_not_match(emulator: Emulator) -> None:
    # The MD5 now matches the tampered bytes, but it is a signed header: signature fails.
    logstore = _logstore("tampered-md5")
    prepared = _prepare(emulator, "v1", logstore, Compression.NONE)
    tampered = _flip_last_byte(prepared.body)
    headers = {**prepared.headers, "Content-MD5": content_md5(tampered)}
    response = _post(prepared, headers, tampered)
    _assert_refusal(emulator, logstore, response, 401, ErrorCode.SignatureNotMatch)


def test_tampered_body_v4_is_signature_not_match(emulator: Emulator) -> None:
    # V4 signs x-log-content-sha256 and the emulator checks it against the body.
    logstore = _logstore("tampered-v4")
    prepared = _prepare(emulator, "v4", logstore, Compression.NONE)
    response = _post(prepared, prepared.headers, _flip_last_byte(prepared.body))
    _assert_refusal(emulator, logstore, response, 401, ErrorCode.SignatureNotMatch)


def _unknown_compress_type(prepared: PreparedRequest) -> tuple[dict[str, str], bytes]:
    return _resigned(prepared, set_headers={"x-log-compresstype": "snappy"})


def _truncated_lz4(prepared: PreparedRequest) -> tuple[dict[str, str], bytes]:
    return _resigned(prepared, body=prepared.body[: len(prepared.body) // 2])


def _corrupt_zstd(prepared: PreparedRequest) -> tuple[dict[str, str], bytes]:
    raw = encode_log_group(ONE_LOG)
    frame = compress(Compression.ZSTD, raw)  # raw size unchanged: same LogGroup
    # A cut frame, not flipped bytes: small inputs become raw zstd blocks, where changed
    # bytes can still decompress to a valid (different) LogGroup.
    return _resigned(
        prepared, body=frame[: len(frame) // 2], set_headers={"x-log-compresstype": "zstd"}
    )


def _raw_size_mismatch(prepared: PreparedRequest) -> tuple[dict[str, str], bytes]:
    return _resigned(prepared, set_headers={"x-log-bodyrawsize": str(prepared.raw_size + 1)})


def _not_a_log_group(prepared: PreparedRequest) -> tuple[dict[str, str], bytes]:
    garbage = b"\x0a\xff\xff\xff\xff\x0f not protobuf"
    return _resigned(
        prepared,
        body=compress(Compression.LZ4, garbage),
        set_headers={"x-log-bodyrawsize": str(len(garbage))},
    )


def _missing_raw_size(prepared: PreparedRequest) -> tuple[dict[str, str], bytes]:
    return _resigned(prepared, drop=("x-log-bodyrawsize",))


def _non_numeric_raw_size(prepared: PreparedRequest) -> tuple[dict[str, str], bytes]:
    return _resigned(prepared, set_headers={"x-log-bodyrawsize": "12abc"})


DEFECTS = [
    pytest.param(_unknown_compress_type, 400, ErrorCode.InvalidCompressType, id="compresstype"),
    pytest.param(_truncated_lz4, 400, ErrorCode.PostBodyInvalid, id="corrupt-lz4"),
    pytest.param(_corrupt_zstd, 400, ErrorCode.PostBodyInvalid, id="corrupt-zstd"),
    pytest.param(_raw_size_mismatch, 400, ErrorCode.PostBodyInvalid, id="rawsize-mismatch"),
    pytest.param(_not_a_log_group, 400, ErrorCode.PostBodyInvalid, id="not-a-loggroup"),
    pytest.param(_missing_raw_size, 400, ErrorCode.MissingBodyRawSize, id="missing-rawsize"),
    pytest.param(_non_numeric_raw_size, 400, ErrorCode.InvalidBodyRawSize, id="bad-rawsize"),
]


@pytest.mark.parametrize(("defect", "status", "code"), DEFECTS)
@pytest.mark.parametrize("sig", SIGS)
def test_malformed_body_or_headers(
    emulator: Emulator,
    sig: str,
    defect: Callable[[PreparedRequest], tuple[dict[str, str], bytes]],
    status: int,
    code: ErrorCode,
) -> None:
    logstore = _logstore("defect", sig)
    prepared = _prepare(emulator, sig, logstore)
    response = _post(prepared, *defect(prepared))
    _assert_refusal(emulator, logstore, response, status, code)
