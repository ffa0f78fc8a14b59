"""The test kit as a user meets it: pytest's ``pytester`` runs a user's test file with the
plugin pytest loaded from yai-spool's ``pytest11`` entry point, against the real emulator."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

USER_TESTS = """
import logging
import socket
import threading

import pytest

from yai_spool.testing import ABSENT, ANY, contains, regex

log = logging.getLogger("myapp.billing")
log.setLevel(logging.INFO)
SEEN = {}


def charge(user: str, cents: int) -> None:
    log.info("charged %s", user, extra={"cents": cents})
    try:
        raise ValueError("card declined")
    except ValueError:
        log.exception("charge failed for %s", user)


def test_charge_logs_reach_sls(sls_emulator, sls_handler):
    log.addHandler(sls_handler)
    try:
        charge("ana", 1250)
    finally:
        log.removeHandler(sls_handler)
    [ok] = sls_emulator.wait_for(1, message="charged ana", cents="1250", exc_text=ABSENT)
    assert ok["levelname"] == "INFO"
    assert ok["name"] == "myapp.billing"
    [failed] = sls_emulator.wait_for(
        1, message=regex(r"charge failed for \\w+"), exc_text=contains("ValueError: card declined")
    )
    assert failed.matches(levelname="ERROR", lineno=ANY)
    assert len(sls_emulator.records()) == 2
    SEEN["url"] = sls_emulator.url
    SEEN["flushers"] = [t for t in threading.enumerate() if t.name.startswith("yai-spool-flusher")]
    assert SEEN["flushers"]


def test_the_previous_emulator_and_handler_are_gone():
    host, port = SEEN["url"].removeprefix("http://").split(":")
    with pytest.raises(OSError):
        socket.create_connection((host, int(port)), timeout=2).close()
    assert not any(t.is_alive() for t in SEEN["flushers"])


def test_factory_builds_every_mode(sls_emulator, sls_handler_factory):
    for mode in ("spool", "memory", "sync"):
        handler = sls_handler_factory(mode=mode, topic=f"t-{mode}")
        record = logging.LogRecord("myapp", logging.WARNING, __file__, 1, "via %s", (mode,), None)
        handler.handle(record)
    for mode in ("spool", "memory", "sync"):
        [rec] = sls_emulator.wait_for(1, message=f"via {mode}")
        assert rec.topic == f"t-{mode}"


def test_faults_are_reachable(sls_emulator, sls_handler):
    sls_emulator.emulator.faults.fail_next(2, error_code="ServerBusy")
    log.addHandler(sls_handler)
    try:
        log.warning("survives two 503s")
    finally:
        log.removeHandler(sls_handler)
    sls_emulator.wait_for(1, message="survives two 503s")
    assert sls_emulator.emulator.counters().by_status.get(503) == 2
"""


def test_a_users_test_file_passes_with_the_plugin(pytester: pytest.Pytester) -> None:
    """Fixtures come from the installed entry point (a subprocess: a fresh pytest)."""
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*test_the_previous_emulator_and_handler_are_gone PASSED*"])


def test_wait_for_fails_with_what_arrived(pytester: pytest.Pytester) -> None:
    """A record that never comes fails the user's test after ``timeout``, listing arrivals."""
    pytester.makepyfile(
        test_missing="""
import logging

def test_expects_a_record_that_never_comes(sls_emulator, sls_handler):
    log = logging.getLogger("myapp")
    log.addHandler(sls_handler)
    log.error("the record that did come")
    sls_emulator.wait_for(1, message="the record that did come")
    sls_emulator.wait_for(1, message="never logged", timeout=0.5)
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: expected 1 record(s) matching {'message': 'never logged'}*",
            "*the record that did come*",
        ]
    )


def test_plugin_can_be_disabled(pytester: pytest.Pytester) -> None:
    """``-p no:yai_spool`` removes the fixtures (the entry point's name is ``yai_spool``)."""
    pytester.makepyfile(test_off="def test_needs_it(sls_emulator):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:yai_spool", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'sls_emulator' not found*"])


def test_readme_example_test_passes(pytester: pytest.Pytester) -> None:
    """The complete example test in README.md runs green as a user's file."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "def test_" in b]
    assert blocks, "README has no example test"
    pytester.makepyfile(**{f"test_readme_{i}": block for i, block in enumerate(blocks)})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=sum(block.count("def test_") for block in blocks))


def test_loading_the_plugin_imports_no_emulator_and_no_http_library(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pytest imports the plugin in every session of a project using yai-spool: keep it light."""
    code = (
        "import json, sys\n"
        "import yai_spool.testing.pytest_plugin\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('httpx', 'rich', 'typer')"
        " or m.startswith(('yai_spool.emulator', 'yai_spool.handlers.durable')))))"
    )
    # A fresh interpreter (as a user's pytest session starts) with this checkout first.
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    result = pytester.runpython_c(code)
    assert result.ret == 0, result.errlines
    assert json.loads(result.outlines[-1]) == []
