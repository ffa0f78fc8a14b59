"""Our contents versus the official SDK handler's own field extraction.

The oracle is ``aliyun.log.SimpleLogHandler.make_request`` - the method ``QueuedLogHandler``
inherits unchanged (asserted below) - called directly, so nothing is sent and no worker thread
starts. The SDK iterates a ``set`` of fields, so its order depends on ``PYTHONHASHSEED``: the
matrix compares contents as multisets and a separate test pins our deterministic order.
The deliberate differences listed in ``yai_spool.handlers.mapping`` each have a test at the end.
"""

from __future__ import annotations

import collections
import copy
import logging
from typing import Any

import pytest
from aliyun.log import LogFields as SdkLogFields
from aliyun.log import QueuedLogHandler, SimpleLogHandler
from mapping_support import DEFAULT_KEYS, contents_dict, exc_info_of, make_record

from yai_spool.handlers.mapping import LogFields, RecordMapper

# Options that make our output match the SDK byte for byte where the defaults differ on
# purpose: exceptions appended to the message, and JSON with \uXXXX escapes.
SDK_LIKE = {"exception_key": None, "stack_key": None, "json_ensure_ascii": True}


def sdk_contents(
    record: logging.LogRecord, formatter: logging.Formatter | None = None, **options: Any
) -> list[tuple[str, str]]:
    if options.get("fields") is not None:
        # The SDK only recognises its own enum class; ours has the same names (tested above).
        options["fields"] = [
            SdkLogFields[f.name] if isinstance(f, LogFields) else f for f in options["fields"]
        ]
    handler = SimpleLogHandler("sls.example.test", "id", "secret", "project", "logstore", **options)
    if formatter is not None:
        handler.setFormatter(formatter)
    request = handler.make_request(record)
    (item,) = request.get_log_items()
    return [(k, v) for k, v in item.get_contents()]


def our_contents(
    record: logging.LogRecord, formatter: logging.Formatter | None = None, **options: Any
) -> list[tuple[str, str]]:
    mapper = RecordMapper(format=formatter, context=False, **SDK_LIKE, **options)
    return [(k, v) for k, v in mapper.map(record)["contents"]]


def assert_same(
    record: logging.LogRecord, formatter: logging.Formatter | None = None, **options: Any
) -> None:
    """Both sides map their own copy (formatting caches values on the record)."""
    ours = our_contents(copy.copy(record), formatter, **options)
    theirs = sdk_contents(copy.copy(record), formatter, **options)
    assert collections.Counter(ours) == collections.Counter(theirs)


def test_queued_handler_uses_the_same_extraction() -> None:
    """QueuedLogHandler inherits make_request unchanged, so testing SimpleLogHandler covers it."""
    assert QueuedLogHandler.make_request is SimpleLogHandler.make_request


def test_logfields_enum_matches_the_sdk() -> None:
    """Our LogFields has the SDK's member names and values, in the same order."""
    assert [(m.name, m.value) for m in LogFields] == [(m.name, m.value) for m in SdkLogFields]


def test_kv_pattern_matches_the_sdk() -> None:
    """For the default separator the extraction regex is the SDK's, character for character."""
    handler = SimpleLogHandler("e", "i", "k", "p", "l", extract_kv=True)
    assert RecordMapper(extract_kv=True)._kv_pattern.pattern == handler.extract_kv_ptn.pattern


RECORDS = {
    "plain": lambda: make_record("plain message"),
    "args": lambda: make_record("%s bought %d items", ("alice", 3)),
    "extras": lambda: make_record(
        "with extras",
        extra={
            "user": "bob",
            "count": 3,
            "ratio": 0.25,
            "flag": True,
            "payload": {"a": [1, 2], "b": "ü"},
            "items": ["x", "y"],
            "pair": (1, "z"),
            "empty": "",
        },
    ),
    "dict_msg": lambda: make_record({"order": 17, "state": "paid", "who": {"id": 1}}),
    "kv_msg": lambda: make_record('order=17 state=paid note="two words" amount = 3.5'),
    "error": lambda: make_record(
        "failed",
        level=logging.ERROR,
        exc_info=exc_info_of(ValueError("bad")),
        sinfo="Stack:\n  f()",
    ),
    "unicode": lambda: make_record("héllo 世界", extra={"city": "北京"}),
}

CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},
    "fields_members": {"fields": [LogFields.level, LogFields.line_no, LogFields.asc_time]},
    "fields_sdk_members": {"fields": [SdkLogFields.level, SdkLogFields.created_timestamp]},
    "fields_names": {"fields": ["level", "record_name", "micro_second", "level_no"]},
    "all_fields": {"fields": list(SdkLogFields)},
    "prefix_suffix": {"buildin_fields_prefix": "__", "buildin_fields_suffix": "__"},
    "extra_off": {"extra": False},
    "extra_off_whitelist": {"extra": False, "fields": ["level", "user", "count"]},
    "extract_json": {"extract_json": True},
    "extract_json_prefix_drop": {
        "extract_json": True,
        "extract_json_prefix": "j_",
        "extract_json_suffix": "_j",
        "extract_json_drop_message": True,
    },
    "extract_kv": {"extract_kv": True},
    "extract_kv_prefix_drop": {
        "extract_kv": True,
        "extract_kv_prefix": "kv_",
        "extract_kv_suffix": "_kv",
        "extract_kv_drop_message": True,
    },
    "extract_kv_sep": {"extract_kv": True, "extract_kv_sep": ":"},
    "everything": {
        "fields": [LogFields.level, LogFields.module],
        "buildin_fields_prefix": "b_",
        "extract_json": True,
        "extract_kv": True,
        "extract_kv_prefix": "kv_",
        "extra": True,
    },
}


@pytest.mark.parametrize("record_name", sorted(RECORDS))
@pytest.mark.parametrize("config_name", sorted(CONFIGS))
def test_matrix_same_contents_as_sdk(config_name: str, record_name: str) -> None:
    """For every configuration and record, contents equal the SDK's (as multisets)."""
    assert_same(RECORDS[record_name](), **CONFIGS[config_name])


@pytest.mark.parametrize(
    "formatter",
    [
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"),
        logging.Formatter("{levelname} {message}", style="{"),
    ],
)
@pytest.mark.parametrize("record_name", ["plain", "error", "args"])
def test_same_contents_with_a_formatter(formatter: logging.Formatter, record_name: str) -> None:
    """With a handler formatter (asctime included), the message matches the SDK's."""
    assert_same(RECORDS[record_name](), formatter, fields=list(LogFields))


def test_same_contents_with_a_custom_format_method() -> None:
    """A Formatter subclass overriding format() gives the SDK's message too."""

    class Upper(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return super().format(record).upper()

    assert_same(RECORDS["error"](), Upper())


# ----------------------------------------------------------------- deliberate differences


def test_difference_exceptions_have_their_own_field_by_default() -> None:
    """Default: traceback in exc_text, not in message (SDK: appended to message)."""
    record = RECORDS["error"]()
    theirs = dict(sdk_contents(copy.copy(record)))
    ours = contents_dict(RecordMapper(context=False).map(copy.copy(record)))
    assert theirs["message"] == "\n".join([ours["message"], ours["exc_text"], ours["stack_info"]])


def test_difference_order_is_deterministic() -> None:
    """Our order is message, LogFields order, extras; the SDK's follows set iteration."""
    record = RECORDS["extras"]()
    ours = [k for k, _ in our_contents(record)]
    assert ours[:11] == DEFAULT_KEYS
    assert ours[11:] == [
        "user",
        "count",
        "ratio",
        "flag",
        "payload",
        "items",
        "pair",
        "empty",
    ]


def test_difference_keys_are_sanitised_and_unique() -> None:
    """The SDK ships invalid, reserved and duplicate keys as they are; we make them valid."""
    record = make_record("a.b=1 c-d=2 中文=3 __topic__=t")
    theirs = [k for k, _ in sdk_contents(copy.copy(record), extract_kv=True)]
    ours = [k for k, _ in our_contents(copy.copy(record), extract_kv=True)]
    assert {"a.b", "c-d", "中文", "__topic__"} <= set(theirs)
    assert {"a_b", "c_d", "__", "_topic_"} <= set(ours)
    record = make_record({"message": "inner"})
    theirs = [k for k, _ in sdk_contents(copy.copy(record), extract_json=True)]
    ours = [k for k, _ in our_contents(copy.copy(record), extract_json=True)]
    assert theirs.count("message") == 2
    assert ours.count("message") == 1
    assert "message_2" in ours


def test_difference_json_keeps_non_ascii_by_default() -> None:
    """Default JSON keeps "ü" (the SDK writes \\u00fc); both parse to the same object."""
    record = make_record(extra={"payload": {"b": "ü"}})
    theirs = dict(sdk_contents(copy.copy(record)))["payload"]
    ours = contents_dict(RecordMapper().map(copy.copy(record)))["payload"]
    assert (theirs, ours) == ('{"b": "\\u00fc"}', '{"b": "ü"}')


def test_difference_unencodable_json_stays_json() -> None:
    """A container JSON cannot encode: SDK falls back to str() of it, we keep valid JSON."""
    record = make_record(extra={"payload": {"s": {1}}})
    theirs = dict(sdk_contents(copy.copy(record)))["payload"]
    ours = contents_dict(RecordMapper().map(copy.copy(record)))["payload"]
    assert (theirs, ours) == ("{'s': {1}}", '{"s": "{1}"}')


def test_difference_bytes_are_not_silently_dropped() -> None:
    """bytes decode with backslashreplace; the SDK drops invalid bytes ("ignore")."""
    record = make_record(extra={"raw": b"a\xffb"})
    assert dict(sdk_contents(copy.copy(record)))["raw"] == "ab"
    assert contents_dict(RecordMapper().map(copy.copy(record)))["raw"] == "a\\xffb"


def test_difference_kv_scans_formatted_message() -> None:
    """%-arguments are substituted before scanning; the SDK scans the raw msg."""
    record = make_record("user=%s", ("bob",))
    assert "user" not in dict(sdk_contents(copy.copy(record), extract_kv=True))
    assert dict(our_contents(copy.copy(record), extract_kv=True))["user"] == "bob"


def test_difference_extras_named_like_logfields_are_kept() -> None:
    """Extras called "level" or starting with "__" are shipped; the SDK drops them silently."""
    record = make_record(extra={"level": "high", "__private": 1})
    theirs = dict(sdk_contents(copy.copy(record)))
    ours = dict(our_contents(copy.copy(record)))
    assert "level" not in theirs
    assert "__private" not in theirs
    assert (ours["level"], ours["__private"]) == ("high", "1")


def test_difference_logfields_values_accepted_in_fields() -> None:
    """fields=["levelname"] works here; the SDK raises KeyError on every record."""
    record = make_record()
    with pytest.raises(KeyError):
        sdk_contents(copy.copy(record), fields=["levelname"])
    assert dict(our_contents(copy.copy(record), fields=["levelname"]))["levelname"] == "INFO"


def test_difference_time_ns_is_the_records_own() -> None:
    """time_ns comes from created; the SDK uses the sub-second part of 'now'."""
    record = make_record()
    record.created = 1_700_000_000.5
    handler = SimpleLogHandler("e", "i", "k", "p", "l")
    (item,) = handler.make_request(copy.copy(record)).get_log_items()
    entry = RecordMapper().map(record)
    assert item.get_time() == entry["time"] == 1_700_000_000
    assert entry["time_ns"] == 500_000_000
