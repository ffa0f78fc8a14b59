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

from yai_spool.credentials import Credentials
from yai_spool.emulator import Emulator, EmulatorConfig

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
@pytest.mark.parametrize("version", ["v1", "v4"])
def test_bad_identity_is_rejected_with_401(
    emu: Emulator, credentials: Credentials, code: str, version: str
) -> None:
    answer = send(emu, prepare(emu, credentials=credentials, signature_version=version))
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
    from yai_spool.signing import sign_v1

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
