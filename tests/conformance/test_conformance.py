"""One conformance suite, four real clients, one emulator.

Every client of ``conftest.SENDER_IDS`` delivers the same LogGroups to the emulator over
real HTTP; what the emulator stored is read back and compared byte for byte. The negative
cases check that each refusal carries the SLS errorCode the real service answers with
(sls-protocol.md §3, §5, §6, §7): the ones a client can provoke through its public API run
through every client, the ones no well-behaved client can produce (a tampered body, a
missing raw size) are sent as hand-built requests.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.conformance.conftest import SENDER_IDS, SendFailed, make_sender
from tests.conftest import ACCESS_KEY_ID, ACCESS_KEY_SECRET
from yai_spool.compression import Compression
from yai_spool.credentials import Credentials
from yai_spool.emulator import Emulator
from yai_spool.model import Log, LogGroup
from yai_spool.request import Destination, Endpoint, build_put_logs_request

PROJECT = "conformance"
_store_ids = itertools.count()

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def _logstore(prefix: str) -> str:
    return f"{prefix.replace('-', '_')}_{next(_store_ids)}"


def _groups() -> dict[str, LogGroup]:
    """The round-trip corpus: each entry exercises one property of the wire format."""
    return {
        "unicode": LogGroup(
            logs=(
                Log(T0, (("msg", "日志 ✓ — emoji 🚀"), ("level", "INFO")), 123_456_789),
                Log(T0 + 1, (("msg", "Ünïcödé \u2028 line sep"), ("k", "\x00nul")), 1),
            ),
            topic="topic-✓",
            source="10.0.0.1",
        ),
        "empty_values": LogGroup(
            logs=(Log(T0, (("empty", ""), ("msg", "x"), ("also_empty", "")), 5),),
            topic="",
            source="10.0.0.1",
        ),
        "non_utf8": LogGroup(
            logs=(Log(T0, (("bin", b"\xff\x00bin\xfe"), ("msg", b"ok")), 42),),
            source="10.0.0.1",
        ),
        "many_keys": LogGroup(
            logs=tuple(
                Log(T0 + i, tuple((f"key_{j}", f"value {i}-{j}") for j in range(200)), i + 1)
                for i in range(3)
            ),
            source="10.0.0.1",
        ),
        "nanoseconds": LogGroup(
            logs=(
                Log(T0, (("msg", "max ns"),), 999_999_999),
                Log(T0, (("msg", "min ns"),), 1),
                Log(2**32 - 1, (("msg", "last second of uint32"),), 500),
            ),
            source="10.0.0.1",
        ),
        "topic_source_tags": LogGroup(
            logs=(Log(T0, (("msg", "tagged"),), 7),),
            topic="my-topic",
            source="192.168.7.7",
            tags=(("env", "test"), ("host", "web-1"), ("ünï", "✓")),
        ),
    }


def _applies(sender_caps: object, group_name: str) -> bool:
    caps = sender_caps
    if group_name == "non_utf8" and not caps.bytes_values:  # type: ignore[attr-defined]
        return False
    return not (group_name == "topic_source_tags" and not caps.tags)  # type: ignore[attr-defined]


def _expected_value(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


@pytest.mark.usefixtures("proxy_env")
@pytest.mark.parametrize("sender_id", SENDER_IDS)
@pytest.mark.parametrize("group_name", list(_groups()))
def test_round_trip_is_byte_exact(emulator: Emulator, sender_id: str, group_name: str) -> None:
    sender = make_sender(sender_id, emulator)
    group = _groups()[group_name]
    if not _applies(sender.caps, group_name):
        pytest.skip(f"{sender_id} cannot carry {group_name} (client API limitation)")
    logstore = _logstore(sender_id)

    sender.send(PROJECT, logstore, group)

    stored = emulator.logs(PROJECT, logstore)
    assert len(stored) == len(group.logs)
    # The producer may batch in any order; sort both sides by a stable key.
    def key(contents: tuple[tuple[str, bytes], ...], t: int) -> tuple[object, ...]:
        return (t, contents)

    sent = sorted(
        (key(tuple((k, _expected_value(v)) for k, v in log.contents), log.time), log)
        for log in group.logs
    )
    got = sorted((key(s.contents, s.time), s) for s in stored)
    for (sent_key, log), (got_key, row) in zip(sent, got, strict=True):
        assert got_key == sent_key  # contents byte-exact, in order, duplicates kept
        assert row.time == log.time
        if sender.caps.exact_time_ns or log.time_ns:
            assert row.time_ns == log.time_ns
        assert row.topic == group.topic
        assert row.source == group.source
        tags = dict(row.tags)
        tags.pop("__pack_id__", None)  # the producer adds its own batch id tag
        assert tags == dict(group.tags)


# -- negatives through every client ---------------------------------------------------------


@pytest.mark.usefixtures("proxy_env")
@pytest.mark.parametrize("sender_id", SENDER_IDS)
def test_wrong_secret_is_signature_not_match(emulator: Emulator, sender_id: str) -> None:
    sender = make_sender(sender_id, emulator, secret="not-the-secret")  # noqa: S106
    logstore = _logstore(sender_id)
    with pytest.raises(SendFailed) as info:
        sender.send(PROJECT, logstore, _groups()["unicode"])
    assert info.value.error_code == "SignatureNotMatch"
    assert emulator.count(PROJECT, logstore) == 0


@pytest.mark.usefixtures("proxy_env")
@pytest.mark.parametrize("sender_id", ["sdk-v1-lz4", "sdk-v4-lz4", "producer-zstd", "client-lz4"])
def test_unknown_key_id_is_unauthorized(emulator: Emulator, sender_id: str) -> None:
    sender = make_sender(sender_id, emulator, key_id="LTAI-nobody")
    with pytest.raises(SendFailed) as info:
        sender.send(PROJECT, _logstore(sender_id), _groups()["unicode"])
    assert info.value.error_code == "Unauthorized"


# -- negatives no well-behaved client can produce: hand-built requests ---------------------


def _prepared(
    emulator: Emulator,
    *,
    group: LogGroup | None = None,
    compression: Compression = Compression.LZ4,
    now: datetime | None = None,
    secret: str = ACCESS_KEY_SECRET,
):  # type: ignore[no-untyped-def]
    destination = Destination(Endpoint.parse(emulator.url), PROJECT, _logstore("raw"))
    return build_put_logs_request(
        destination,
        group or _groups()["unicode"],
        Credentials(ACCESS_KEY_ID, secret),
        compression=compression,
        now=now,
    )


def _send(prepared, *, body: bytes | None = None, drop: tuple[str, ...] = (), **extra: str):  # type: ignore[no-untyped-def]
    headers = {k: v for k, v in prepared.headers.items() if k.lower() not in drop}
    headers.update(extra)
    with httpx.Client(trust_env=False) as http:
        return http.post(
            prepared.url,
            content=prepared.body if body is None else body,
            headers={**headers, "Host": prepared.host_header},
        )


def _code(response: httpx.Response) -> str:
    assert response.headers.get("x-log-requestid")
    return str(response.json()["errorCode"])


def test_hand_built_request_is_accepted(emulator: Emulator) -> None:
    """Control case: the raw path below is correct when nothing is tampered with."""
    response = _send(_prepared(emulator))
    assert response.status_code == 200
    assert response.content == b""
    assert len(response.headers["x-log-requestid"]) == 24


def test_tampered_body_is_refused(emulator: Emulator) -> None:
    prepared = _prepared(emulator, compression=Compression.NONE)
    tampered = bytearray(prepared.body)
    tampered[-1] ^= 0x01
    response = _send(prepared, body=bytes(tampered))
    # Content-MD5 still names the original bytes: the body was changed in flight.
    assert response.status_code == 400
    assert _code(response) == "InvalidContentMD5"


def test_tampered_body_without_md5_is_signature_not_match(emulator: Emulator) -> None:
    prepared = _prepared(emulator, compression=Compression.NONE)
    tampered = bytearray(prepared.body)
    tampered[-1] ^= 0x01
    # Recompute Content-MD5 for the tampered bytes: the signature still covers the old MD5.
    from yai_spool.signing import content_md5

    response = _send(prepared, body=bytes(tampered), **{"Content-MD5": content_md5(bytes(tampered))})
    assert response.status_code == 401
    assert _code(response) == "SignatureNotMatch"


def test_expired_request_time(emulator: Emulator) -> None:
    stale = datetime.now(UTC) - timedelta(minutes=16)
    response = _send(_prepared(emulator, now=stale))
    assert response.status_code == 400
    assert _code(response) == "RequestTimeExpired"


def test_request_time_just_inside_the_window_is_accepted(emulator: Emulator) -> None:
    response = _send(_prepared(emulator, now=datetime.now(UTC) - timedelta(minutes=14)))
    assert response.status_code == 200


def test_oversize_body(emulator: Emulator) -> None:
    value = "x" * (1024 * 1024 - 64)  # just under the 1 MiB value limit
    big = LogGroup(logs=tuple(Log(T0, (("msg", value),), 1) for _ in range(11)))  # > 10 MiB raw
    response = _send(_prepared(emulator, group=big, compression=Compression.LZ4))
    assert response.status_code == 413
    assert _code(response) == "PostBodyTooLarge"


def test_bad_compression_type(emulator: Emulator) -> None:
    prepared = _prepared(emulator)
    response = _send(prepared, **{"x-log-compresstype": "snappy"})
    assert response.status_code == 400
    # Either refusal is right for a client that lies about its compression; the signature
    # check may see the changed signed header first.
    assert _code(response) in {"InvalidCompressType", "SignatureNotMatch"}


def test_corrupt_compressed_body(emulator: Emulator) -> None:
    prepared = _prepared(emulator, compression=Compression.NONE)
    # Claim lz4 for an uncompressed body: re-sign so only the body framing is wrong.
    destination = Destination(Endpoint.parse(emulator.url), PROJECT, _logstore("lz4lie"))
    from yai_spool.request import build_put_logs_request_from_raw

    lying = build_put_logs_request_from_raw(
        destination,
        prepared.body,
        Credentials(ACCESS_KEY_ID, ACCESS_KEY_SECRET),
        compression=Compression.NONE,
    )
    response = _send(lying, **{"x-log-bodyrawsize": str(len(prepared.body) * 3)})
    assert response.status_code in {400, 401}
    assert _code(response) in {"PostBodyInvalid", "InvalidBodyRawSize", "SignatureNotMatch"}


def test_missing_raw_size(emulator: Emulator) -> None:
    response = _send(_prepared(emulator), drop=("x-log-bodyrawsize",))
    assert response.status_code == 400
    assert _code(response) in {"MissingBodyRawSize", "InvalidBodyRawSize"}
