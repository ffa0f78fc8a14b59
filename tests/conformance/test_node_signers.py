"""Our V1 signer against the official Node.js signers, on randomized requests.

The Python SDK offers V1 only with hmac-sha1 (tests/unit/test_signing.py compares against
it); the official hmac-sha256 signer is ``@alicloud/gateway-sls`` (Node.js), so this is where
hmac-sha256 meets an independent implementation. ``@alicloud/log``'s hmac-sha1 signer is
compared too. Every hypothesis example is a batch of requests signed by one ``node`` process
(node/sign_v1.js calls the packages' own methods), so the comparison stays cheap.

Inputs stay inside what all signers define the same way: lower-case ``x-log-*``/``x-acs-*``
names (the gateway signs names as given and case-sensitively sorted, ours lower-cases),
no ``x-log-meta-*`` or ``x-log-date`` (the Python SDK's exclusions; the emulator's
``v1_meta_headers`` covers the Node form), values without surrounding blanks (``@alicloud/log``
trims them), and a query only for the gateway (``@alicloud/log`` sorts whole ``k=v`` strings).
"""

from __future__ import annotations

import string
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from node_support import requires_node, run_node

from yai_spool.sls.signing import v1_signature

pytestmark = requires_node

_name_char = st.sampled_from(string.ascii_lowercase + string.digits + "-")
_suffix = st.text(_name_char, min_size=1, max_size=12).filter(lambda s: not s.startswith("-"))
_header_names = st.builds(
    lambda p, s: p + s, st.sampled_from(["x-log-", "x-acs-"]), _suffix
).filter(lambda n: not n.startswith(("x-log-meta-", "x-log-date", "x-log-signaturemethod")))
# Printable values without surrounding blanks; unicode included (signed as UTF-8).
_value = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\r\n"), max_size=24
).map(str.strip)
_query_key = st.text(
    st.sampled_from(string.ascii_letters + string.digits + "_"), min_size=1, max_size=8
)


@st.composite
def requests(draw: st.DrawFn, *, with_query: bool) -> dict[str, Any]:
    headers: dict[str, str] = {
        "date": "Thu, 01 Jan 2026 00:00:00 GMT",
        "x-log-apiversion": "0.6.0",
        "x-log-bodyrawsize": str(draw(st.integers(0, 10**7))),
    }
    headers.update(draw(st.dictionaries(_header_names, _value, max_size=4)))
    if draw(st.booleans()):
        headers["content-type"] = draw(
            st.sampled_from(["application/x-protobuf", "application/json"])
        )
    if draw(st.booleans()):
        headers["content-md5"] = draw(
            st.text(st.sampled_from("0123456789ABCDEF"), min_size=32, max_size=32)
        )
    if draw(st.booleans()):
        headers["x-log-compresstype"] = draw(st.sampled_from(["lz4", "deflate", "gzip", "zstd"]))
    if draw(st.booleans()):
        headers["x-acs-security-token"] = draw(_value.filter(bool))
    query = draw(st.dictionaries(_query_key, _value, max_size=3)) if with_query else {}
    return {
        "method": draw(st.sampled_from(["POST", "GET", "PUT", "DELETE"])),
        "path": "/logstores/"
        + draw(st.text(st.sampled_from(string.ascii_lowercase + "-_"), min_size=2, max_size=12))
        + draw(st.sampled_from(["/shards/lb", "/shards/route", ""])),
        "query": query,
        "headers": headers,
        "secret": draw(st.text(min_size=1, max_size=24).filter(lambda s: "\x00" not in s)),
    }


def _ours(case: dict[str, Any], method: str) -> str:
    headers = {**case["headers"], "x-log-signaturemethod": method}
    return v1_signature(
        case["secret"],
        case["method"],
        case["path"],
        case["query"],
        headers,
        signature_method=method,  # type: ignore[arg-type]
    )


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(requests(with_query=True), min_size=10, max_size=10),
    st.lists(requests(with_query=False), min_size=10, max_size=10),
)
def test_v1_matches_the_official_node_signers(
    with_query: list[dict[str, Any]], without_query: list[dict[str, Any]]
) -> None:
    cases = with_query + without_query
    answers = run_node("sign_v1.js", cases)
    assert len(answers) == len(cases)
    for case, answer in zip(cases, answers, strict=True):
        assert answer["gateway"] == _ours(case, "hmac-sha256"), case
        if not case["query"]:
            assert answer["log"] == f"LOG akid:{_ours(case, 'hmac-sha1')}", case


def test_the_worked_examples_agree_with_the_gateway_signer() -> None:
    """The fixed hmac-sha256 vectors of tests/unit/test_signing.py, from the gateway itself."""
    headers = {
        "date": "Thu, 01 Jan 2026 00:00:00 GMT",
        "content-type": "application/x-protobuf",
        "content-md5": "06B922B18335D4932A3F988E1BE4585D",
        "x-log-apiversion": "0.6.0",
        "x-log-bodyrawsize": "74",
        "x-log-compresstype": "lz4",
    }
    lb = {"method": "POST", "path": "/logstores/my-logstore/shards/lb", "query": {}}
    route = {
        "method": "POST",
        "path": "/logstores/my-logstore/shards/route",
        "query": {"key": "user 42"},
    }
    cases = [
        {**lb, "headers": headers, "secret": "TestSecret123"},
        {
            **route,
            "headers": {**headers, "x-acs-security-token": "STS.tok"},
            "secret": "TestSecret123",
        },
    ]
    lb_answer, route_answer = run_node("sign_v1.js", cases)
    assert lb_answer["gateway"] == "6SzzyVVTSlSfYHm2+yhF5hR8wazJgxreAG04LhCNzRk="
    assert lb_answer["log"] == "LOG akid:yJmKdSzHXzjak43xGU7EPkFRfS0="
    assert route_answer["gateway"] == "xGTqeddY1gC8CG/K+WgUPwUOXnEa36p6xbKbrsctykc="
