"""Identity checks: V1/V4 signatures, STS tokens, request time, Content-MD5 (sls-protocol §3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from emulator_support import (
    CREDS,
    KEY_ID,
    LOGSTORE,
    PROJECT,
    SECRET,
    STS_CREDS,
    TMP_KEY_ID,
    TMP_SECRET,
    TOKEN,
    group_of,
    prepare,
    raw_of,
    send,
    signed_v1,
    unsigned,
)

from yai_spool.emulator import Emulator, EmulatorConfig
from yai_spool.sls.credentials import Credentials

PATH = f"/logstores/{LOGSTORE}/shards/lb"


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_signed_request_with_a_registered_key_is_accepted(emu: Emulator, version: str) -> None:
    answer = send(emu, prepare(emu, signature_version=version))
    assert answer.status == 200, answer.body
    (summary,) = emu.requests()
    assert (summary.auth_version, summary.access_key_id) == (version, KEY_ID)


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_sts_key_with_its_token_is_accepted(emu: Emulator, version: str) -> None:
    answer = send(emu, prepare(emu, credentials=STS_CREDS, signature_version=version))
    assert answer.status == 200, answer.body
    summary = emu.requests()[0]
    assert summary.headers["x-acs-security-token"] == "<present>"  # never the token itself


@pytest.mark.parametrize(
    ("credentials", "code"),
    [
        (Credentials(TMP_KEY_ID, TMP_SECRET), "Unauthorized"),  # STS key without its token
        (Credentials(TMP_KEY_ID, TMP_SECRET, "STS.forged"), "Unauthorized"),  # unknown token
        (Credentials(KEY_ID, SECRET, TOKEN), "Unauthorized"),  # token of another key id
        (Credentials("LTAIunknown", "whatever"), "Unauthorized"),  # unknown key id
        (Credentials(KEY_ID, "wrong-secret"), "SignatureNotMatch"),
    ],
    ids=["sts-no-token", "sts-bad-token", "token-other-key", "unknown-key", "bad-signature"],
)
@pytest.mark.parametrize(
    ("version", "method"),
    [("v1", "hmac-sha1"), ("v1", "hmac-sha256"), ("v4", "hmac-sha1")],
    ids=["v1-sha1", "v1-sha256", "v4"],
)
def test_bad_identity_is_rejected_with_401(
    emu: Emulator, credentials: Credentials, code: str, version: str, method: str
) -> None:
    answer = send(
        emu,
        prepare(emu, credentials=credentials, signature_version=version, signature_method=method),
    )
    assert (answer.status, answer.code) == (401, code)
    assert emu.count(PROJECT, LOGSTORE) == 0
    assert SECRET not in answer.message
    assert TOKEN not in answer.message


def test_tampered_body_fails_content_md5_or_v4_payload_hash(emu: Emulator) -> None:
    v1 = prepare(emu, group_of("original"))
    other = prepare(emu, group_of("tampered"))
    answer = send(emu, headers=v1.headers, body=other.body)
    assert (answer.status, answer.code) == (400, "InvalidContentMD5")
    v4 = prepare(emu, group_of("original"), signature_version="v4")
    answer = send(emu, headers=v4.headers, body=other.body)
    assert (answer.status, answer.code) == (401, "SignatureNotMatch")


def test_missing_authorization_is_miss_access_key_id(emu: Emulator) -> None:
    headers, body = unsigned(raw_of(group_of("x")))
    answer = send(emu, headers=headers, body=body)
    assert (answer.status, answer.code) == (400, "MissAccessKeyId")


def test_malformed_authorization_is_unauthorized(emu: Emulator) -> None:
    prepared = prepare(emu)
    headers = {**prepared.headers, "Authorization": "Basic dXNlcjpwYXNz"}
    answer = send(emu, headers=headers, body=prepared.body)
    assert (answer.status, answer.code) == (401, "Unauthorized")


def test_v1_falls_back_to_x_log_date_when_a_proxy_strips_date(emu: Emulator) -> None:
    prepared = prepare(emu)
    headers = {k: v for k, v in prepared.headers.items() if k.lower() != "date"}
    assert "x-log-date" in headers
    assert send(emu, headers=headers, body=prepared.body).status == 200
    headers.pop("x-log-date")
    answer = send(emu, headers=headers, body=prepared.body)
    # Without any date the V1 string-to-sign changes, so the signature fails first.
    assert answer.status in (400, 401)


def test_v4_needs_neither_date_nor_signature_method(emu: Emulator) -> None:
    prepared = prepare(emu, signature_version="v4")
    names = {k.lower() for k in prepared.headers}
    assert "date" not in names
    assert "x-log-signaturemethod" not in names
    assert send(emu, prepared).status == 200


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_request_time_outside_the_skew_is_request_time_expired(emu: Emulator, version: str) -> None:
    old = datetime.now(UTC) - timedelta(seconds=901)
    answer = send(emu, prepare(emu, signature_version=version, now=old))
    assert (answer.status, answer.code) == (400, "RequestTimeExpired")
    near = datetime.now(UTC) - timedelta(seconds=600)
    assert send(emu, prepare(emu, signature_version=version, now=near)).status == 200


def test_skew_code_and_window_are_configurable(tmp_path: Path) -> None:
    config = EmulatorConfig(
        access_keys={KEY_ID: SECRET},
        max_skew_seconds=60,
        skew_error_code="RequestTimeTooSkewed",
        db_path=str(tmp_path / "skew.sqlite3"),
    )
    with Emulator(config) as emu:
        future = datetime.now(UTC) + timedelta(seconds=120)
        answer = send(emu, prepare(emu, now=future))
        assert (answer.status, answer.code) == (400, "RequestTimeTooSkewed")


def test_unparseable_date_is_invalid_date_format(emu: Emulator) -> None:
    headers, body = unsigned(raw_of(group_of("x")))
    headers = signed_v1(headers, body, PATH)
    headers["Date"] = headers["x-log-date"] = "yesterday-ish"
    # Sign again over the bad date so the signature itself is right.
    headers.pop("Authorization")
    from yai_spool.sls.signing import sign_v1

    sign_v1(headers, CREDS, "POST", PATH, {})
    answer = send(emu, headers=headers, body=body)
    assert (answer.status, answer.code) == (400, "InvalidDateFormat")


def test_missing_auth_code_and_unknown_key_code_are_configurable(tmp_path: Path) -> None:
    config = EmulatorConfig(
        access_keys={KEY_ID: SECRET},
        missing_auth_code="Unauthorized",
        unknown_key_code="InvalidAccessKeyId",
        db_path=str(tmp_path / "codes.sqlite3"),
    )
    with Emulator(config) as emu:
        headers, body = unsigned(raw_of(group_of("x")))
        answer = send(emu, headers=headers, body=body)
        assert (answer.status, answer.code) == (401, "Unauthorized")
        answer = send(emu, prepare(emu, credentials=Credentials("nobody", "x")))
        assert (answer.status, answer.code) == (401, "InvalidAccessKeyId")


def test_verification_off_accepts_unsigned_and_wrongly_signed(open_emu: Emulator) -> None:
    headers, body = unsigned(raw_of(group_of("x")))
    assert send(open_emu, headers=headers, body=body).status == 200
    bad = prepare(open_emu, credentials=Credentials("nobody", "nothing"))
    assert send(open_emu, bad).status == 200
    assert open_emu.requests()[1].access_key_id == "nobody"


def test_config_repr_never_shows_secrets() -> None:
    config = EmulatorConfig(access_keys={KEY_ID: SECRET}, sts_tokens={TOKEN: KEY_ID})
    text = repr(config) + str(config)
    assert KEY_ID in text
    assert SECRET not in text
    assert TOKEN not in text


# -- V1 hash methods (x-log-signaturemethod) ------------------------------------------------


@pytest.mark.parametrize("method", ["hmac-sha1", "hmac-sha256"])
def test_v1_hash_is_chosen_by_x_log_signaturemethod(emu: Emulator, method: str) -> None:
    prepared = prepare(emu, credentials=STS_CREDS, signature_method=method)
    assert prepared.headers["x-log-signaturemethod"] == method
    signature = prepared.headers["Authorization"].rsplit(":", 1)[1]
    assert len(signature) == {"hmac-sha1": 28, "hmac-sha256": 44}[method]  # base64 of 20/32
    answer = send(emu, prepared)
    assert answer.status == 200, answer.body
    (summary,) = emu.requests()
    assert summary.headers["x-log-signaturemethod"] == method
    assert emu.count(PROJECT, LOGSTORE) == 1


def _sign_as(headers: dict[str, str], body: bytes, *, claimed: str, hashed_with: str) -> None:
    """V1-sign ``headers`` claiming one method while hashing with another (a broken client)."""
    from yai_spool.sls.signing import v1_signature

    headers["x-log-signaturemethod"] = claimed
    signature = v1_signature(SECRET, "POST", PATH, {}, headers, signature_method=hashed_with)  # type: ignore[arg-type]
    headers["Authorization"] = f"LOG {KEY_ID}:{signature}"


@pytest.mark.parametrize(
    ("claimed", "hashed_with"), [("hmac-sha256", "hmac-sha1"), ("hmac-sha1", "hmac-sha256")]
)
def test_a_signature_hashed_otherwise_than_claimed_is_signature_not_match(
    emu: Emulator, claimed: str, hashed_with: str
) -> None:
    headers, body = unsigned(raw_of(group_of("x")))
    headers = signed_v1(headers, body, PATH)
    _sign_as(headers, body, claimed=claimed, hashed_with=hashed_with)
    answer = send(emu, headers=headers, body=body)
    assert (answer.status, answer.code) == (401, "SignatureNotMatch")
    _sign_as(headers, body, claimed=claimed, hashed_with=claimed)  # control: same bytes, agreed
    assert send(emu, headers=headers, body=body).status == 200


def test_v1_without_signature_method_is_hmac_sha1(emu: Emulator) -> None:
    headers, body = unsigned(raw_of(group_of("x")))
    headers = signed_v1(headers, body, PATH)
    headers.pop("x-log-signaturemethod")
    headers.pop("Authorization")
    from yai_spool.sls.signing import v1_signature

    signature = v1_signature(SECRET, "POST", PATH, {}, headers, signature_method="hmac-sha1")
    headers["Authorization"] = f"LOG {KEY_ID}:{signature}"
    assert send(emu, headers=headers, body=body).status == 200


@pytest.mark.parametrize("value", ["hmac-md5", "HMAC-SHA512", "", "sha256"])
def test_unknown_signature_method_is_invalid_signature_method(emu: Emulator, value: str) -> None:
    headers, body = unsigned(raw_of(group_of("x")))
    headers = signed_v1(headers, body, PATH)
    _sign_as(headers, body, claimed=value, hashed_with="hmac-sha1")
    answer = send(emu, headers=headers, body=body)
    assert (answer.status, answer.code) == (400, "InvalidSignatureMethod")
    assert "x-log-signaturemethod" in answer.message
    assert emu.count(PROJECT, LOGSTORE) == 0
    # Checked before the key lookup: an unknown key id gets the same answer.
    headers["Authorization"] = "LOG LTAIunknown:" + headers["Authorization"].rsplit(":", 1)[1]
    answer = send(emu, headers=headers, body=body)
    assert (answer.status, answer.code) == (400, "InvalidSignatureMethod")


def test_signature_method_value_is_matched_case_insensitively(emu: Emulator) -> None:
    headers, body = unsigned(raw_of(group_of("x")))
    headers = signed_v1(headers, body, PATH)
    _sign_as(headers, body, claimed="HMAC-SHA256", hashed_with="hmac-sha256")
    assert send(emu, headers=headers, body=body).status == 200


def test_verification_off_ignores_the_signature_method(open_emu: Emulator) -> None:
    headers, body = unsigned(raw_of(group_of("x")))
    headers["x-log-signaturemethod"] = "hmac-md5"
    headers["Authorization"] = "LOG someone:c2lnbmF0dXJl"
    assert send(open_emu, headers=headers, body=body).status == 200


# -- which headers are signed ---------------------------------------------------------------


@pytest.mark.parametrize("method", ["hmac-sha1", "hmac-sha256"])
@pytest.mark.parametrize("name", ["x-log-extra", "x-acs-extra", "X-Log-Mixed-Case"])
def test_extra_x_log_and_x_acs_headers_are_signed(emu: Emulator, name: str, method: str) -> None:
    headers, body = unsigned(raw_of(group_of("x")), **{name: "signed value"})
    headers["x-log-signaturemethod"] = method
    headers = signed_v1(headers, body, PATH)
    assert send(emu, headers=headers, body=body).status == 200
    answer = send(emu, headers={**headers, name: "changed in transit"}, body=body)
    assert (answer.status, answer.code) == (401, "SignatureNotMatch")
    unsigned_extra = send(emu, headers={**headers, "x-other": "not signed"}, body=body)
    assert unsigned_extra.status == 200


def _meta_request(*, include_meta: bool) -> tuple[dict[str, str], bytes]:
    """A V1 request carrying x-log-meta-origin, signed like the Python SDK (meta excluded)
    or like the Node.js clients (meta included)."""
    from yai_spool.sls.signing import v1_signature

    headers, body = unsigned(raw_of(group_of("x")), **{"x-log-meta-origin": "node"})
    headers = signed_v1(headers, body, PATH)
    signature = v1_signature(SECRET, "POST", PATH, {}, headers, sign_meta_headers=include_meta)
    headers["Authorization"] = f"LOG {KEY_ID}:{signature}"
    return headers, body


@pytest.mark.parametrize(
    ("mode", "python_form", "node_form"),
    [("either", 200, 200), ("unsigned", 200, 401), ("signed", 401, 200)],
)
def test_x_log_meta_headers_are_verified_per_v1_meta_headers(
    tmp_path: Path, mode: str, python_form: int, node_form: int
) -> None:
    config = EmulatorConfig(
        access_keys={KEY_ID: SECRET}, v1_meta_headers=mode, db_path=str(tmp_path / "m.sqlite3")
    )
    with Emulator(config) as emu:
        headers, body = _meta_request(include_meta=False)
        assert send(emu, headers=headers, body=body).status == python_form
        headers, body = _meta_request(include_meta=True)
        assert send(emu, headers=headers, body=body).status == node_form
        # Either way the meta header is not free to change once it was signed.
        if node_form == 200:
            answer = send(emu, headers={**headers, "x-log-meta-origin": "other"}, body=body)
            assert (answer.status, answer.code) == (401, "SignatureNotMatch")


def test_emulator_config_refuses_unknown_choices() -> None:
    for field, value in (
        ("v1_meta_headers", "sometimes"),
        ("missing_content_type", "ignore"),
        ("gzip_compress_type", "gzip"),
    ):
        with pytest.raises(ValueError, match=field):
            EmulatorConfig(**{field: value})  # type: ignore[arg-type]
