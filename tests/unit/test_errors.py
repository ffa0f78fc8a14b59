"""The exception tree, error-code table, error-envelope parsing and THE classification."""

from __future__ import annotations

import pickle

import pytest

from yai_spool.sls.errors import (
    DEFAULT_STATUS,
    CompressionError,
    ConfigError,
    ConnectError,
    ConnectionLost,
    CredentialsError,
    DecodeError,
    EncodeError,
    ErrorCode,
    Outcome,
    ProtocolError,
    RequestTimeout,
    ShipError,
    SLSError,
    TimeoutError_,
    TransportError,
    YaiSpoolError,
    classify_exception,
    classify_response,
    parse_error_response,
)

R, T, C, X = Outcome.RETRY, Outcome.THROTTLED, Outcome.CREDENTIALS, Outcome.REJECTED
E = ErrorCode

# Every member, with the outcome it must classify to at its default status. Adding a member
# without deciding its outcome fails test_table_covers_every_error_code.
EXPECTED: dict[ErrorCode, Outcome] = {
    E.InternalServerError: R,
    E.ServerBusy: R,
    E.RequestTimeout: R,
    E.Unauthorized: C,
    E.SignatureNotMatch: C,
    E.InvalidAccessKeyId: C,
    E.InvalidAccessKeyId_NotFound: C,
    E.SecurityToken_Expired: C,
    E.SecurityTokenExpired: C,
    E.MissAccessKeyId: C,
    E.RequestTimeExpired: R,
    E.RequestTimeTooSkewed: R,
    E.WriteQuotaExceed: T,
    E.ShardWriteQuotaExceed: T,
    E.ExceedQuota: T,
    E.ProjectNotExist: C,
    E.LogStoreNotExist: C,
    E.PostBodyTooLarge: X,
    E.InvalidLogSize: X,
    E.InvalidTimestamp: X,
    E.InvalidTopic: X,
    E.InvalidSource: X,
    E.PostBodyInvalid: X,
    E.ParameterInvalid: X,
    E.InvalidParameter: X,
    E.InvalidKey: X,
    E.InvalidValue: X,
    E.InvalidBodyRawSize: X,
    E.InvalidCompressType: C,
    E.MissingBodyRawSize: C,
    E.MissingContentType: C,
    E.InvalidContentType: C,
    E.MissingDate: C,
    E.InvalidDateFormat: C,
    E.InvalidRequestTime: C,
    E.MissingHost: C,
    E.InvalidHost: C,
    E.MissingAPIVersion: C,
    E.InvalidAPIVersion: C,
    E.MissingSignatureMethod: C,
    E.InvalidSignatureMethod: C,
    E.MissingContentLength: C,
    E.InvalidContentMD5: R,
    E.BadResponse: R,  # default status 500: a sick server
}


def test_table_covers_every_error_code() -> None:
    assert set(EXPECTED) == set(ErrorCode)
    assert set(DEFAULT_STATUS) == set(ErrorCode)


@pytest.mark.parametrize("code", list(ErrorCode), ids=str)
def test_every_code_classifies_at_its_default_status(code: ErrorCode) -> None:
    assert classify_response(DEFAULT_STATUS[code], code) is EXPECTED[code]
    # The string form (what arrives in JSON) classifies the same as the member.
    assert classify_response(DEFAULT_STATUS[code], str(code)) is EXPECTED[code]


def test_codes_are_the_wire_strings() -> None:
    assert ErrorCode.InvalidAccessKeyId_NotFound == "InvalidAccessKeyId.NotFound"
    assert ErrorCode.SecurityToken_Expired == "SecurityToken.Expired"
    for member in ErrorCode:
        assert member.value.replace(".", "_") == member.name


# The protocol doc's status of each error code, grouped by status.
CODES_BY_STATUS = {
    400: (E.PostBodyInvalid, E.InvalidCompressType, E.RequestTimeExpired),
    401: (E.Unauthorized, E.SignatureNotMatch),
    403: (E.WriteQuotaExceed,),
    404: (E.ProjectNotExist, E.LogStoreNotExist),
    411: (E.MissingContentLength,),
    413: (E.PostBodyTooLarge,),
    500: (E.InternalServerError,),
    503: (E.ServerBusy,),
}


@pytest.mark.parametrize(("status", "codes"), CODES_BY_STATUS.items())
def test_default_statuses_follow_the_protocol_doc(
    status: int, codes: tuple[ErrorCode, ...]
) -> None:
    assert {code: DEFAULT_STATUS[code] for code in codes} == dict.fromkeys(codes, status)


@pytest.mark.parametrize(
    ("status", "code", "message", "expected"),
    [
        (200, None, None, Outcome.DELIVERED),
        (200, "InternalServerError", None, Outcome.DELIVERED),  # only the status counts
        (201, None, None, R),
        (204, None, None, R),
        (500, None, None, R),
        (502, "BadResponse", None, R),
        (503, "Whatever", None, R),
        (500, "PostBodyInvalid", None, R),  # a 5xx code is not trusted
        (599, "Unauthorized", None, R),
        (429, None, None, T),
        (429, "PostBodyInvalid", None, T),
        (403, "WriteQuotaExceed", None, T),
        (403, "SomethingNew", "Project Inflow Quota Exceed", T),
        (403, "SomethingNew", "Write QPS Exceed", T),
        (403, "SomethingNew", "forbidden", C),
        (403, None, None, C),
        (401, None, None, C),
        (401, "BadResponse", None, C),
        (404, None, None, C),
        (404, "UnknownThing", None, C),
        (405, None, None, C),
        (301, None, None, C),
        (302, "BadResponse", None, C),
        (400, "RequestTimeout", None, R),  # PY retries it by code at any status
        (400, "RequestTimeExpired", None, R),
        (400, "RequestTimeTooSkewed", None, R),
        (400, "LogStoreNotExist", None, C),
        (400, None, None, X),
        (400, "BadResponse", None, X),
        (400, "SomethingNew", None, X),
        (413, None, None, X),
        (413, "SomethingNew", None, X),
        (422, None, None, X),
        (408, None, None, R),
        (100, None, None, R),
    ],
)
def test_status_families(
    status: int, code: str | None, message: str | None, expected: Outcome
) -> None:
    assert classify_response(status, code, message) is expected


def test_exception_tree() -> None:
    assert issubclass(ConfigError, YaiSpoolError)
    assert issubclass(ConfigError, ValueError)
    for cls in (DecodeError, EncodeError, CompressionError):
        assert issubclass(cls, ProtocolError)
        assert issubclass(cls, ValueError)
    for cls in (ConnectError, RequestTimeout, ConnectionLost):
        assert issubclass(cls, TransportError)
        assert issubclass(cls, ShipError)
    assert issubclass(SLSError, ShipError)
    assert TimeoutError_ is RequestTimeout
    assert not issubclass(RequestTimeout, OSError)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ConnectError("refused"), R),
        (RequestTimeout("read"), R),
        (ConnectionLost("reset"), R),
        (SLSError(503, "ServerBusy", "busy"), R),
        (SLSError(403, "ShardWriteQuotaExceed", "slow down"), T),
        (SLSError(401, "SignatureNotMatch", "bad sig"), C),
        (SLSError(400, "PostBodyInvalid", "bad body"), X),
        (ConfigError("no key"), C),
        (CredentialsError("refresh failed"), C),
        (EncodeError("time out of range"), X),
        (OSError("network unreachable"), R),
        (TimeoutError(), R),
        (RuntimeError("a bug"), R),  # keep the data: a bug must never dead-letter logs
    ],
)
def test_classify_exception(exc: BaseException, expected: Outcome) -> None:
    assert classify_exception(exc) is expected


def test_parse_error_response_json_envelope() -> None:
    err = parse_error_response(
        401,
        {"X-Log-RequestId": "5B0A6B60BB6EE39764D458B5", "Content-Type": "application/json"},
        b'{"errorCode": "SignatureNotMatch", "errorMessage": "signature mismatch", "extra": 1}',
    )
    assert isinstance(err, SLSError)
    assert (err.status, err.error_code, err.message, err.request_id) == (
        401,
        "SignatureNotMatch",
        "signature mismatch",
        "5B0A6B60BB6EE39764D458B5",
    )
    assert err.outcome is C
    text = str(err)
    for part in ("401", "SignatureNotMatch", "signature mismatch", "5B0A6B60BB6EE39764D458B5"):
        assert part in text


def test_parse_error_response_200_is_none_whatever_the_body() -> None:
    assert parse_error_response(200, {}, b"") is None
    assert parse_error_response(200, {}, b"not json") is None


@pytest.mark.parametrize(
    "body",
    [b"", b"<html>502 Bad Gateway</html>", b"{", b"[]", b'{"errorMessage": "x"}', b"\xff\xfe"],
)
def test_parse_error_response_tolerates_non_envelopes(body: bytes) -> None:
    err = parse_error_response(502, {"x-log-requestid": "RID"}, body)
    assert err is not None
    assert err.error_code == "BadResponse"
    assert err.request_id == "RID"
    assert err.outcome is R
    assert parse_error_response(400, {}, body).outcome is X  # type: ignore[union-attr]


def test_parse_error_response_missing_message_and_request_id() -> None:
    err = parse_error_response(503, {}, b'{"errorCode": "ServerBusy"}')
    assert err is not None
    assert (err.error_code, err.message, err.request_id) == ("ServerBusy", "", "")
    assert "request id -" in str(err)


def test_sls_error_truncates_huge_messages_and_names_the_destination() -> None:
    err = SLSError(500, "X", "m" * 10_000, "rid", project="proj", logstore="store")
    assert len(err.message) == 512
    assert str(err).startswith("PutLogs proj/store: SLS 500 X: ")
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.project, copy.logstore, copy.request_id) == ("proj", "store", "rid")
    parsed = parse_error_response(
        404, {}, b'{"errorCode":"ProjectNotExist","errorMessage":"no"}', project="p", logstore="s"
    )
    assert str(parsed).startswith("PutLogs p/s: SLS 404 ProjectNotExist")
