"""Targeted tests of RecordMapper: each field, each option, time and per-record overrides."""

from __future__ import annotations

import logging
import sys
from typing import Any

import pytest
from mapping_support import (
    DEFAULT_KEYS,
    StrRaises,
    check_entry,
    contents_dict,
    exc_info_of,
    make_record,
)

from yai_spool.handlers.mapping import (
    DEFAULT_MAX_ENTRY_BYTES,
    DEFAULT_MAX_VALUE_BYTES,
    ERROR_KEY,
    MAPPER_OPTIONS,
    LogFields,
    RecordMapper,
)

#: The options of ``aliyun.log.QueuedLogHandler``'s constructor that choose the record's fields.
SDK_OPTIONS = frozenset({
    "topic", "fields", "extra", "buildin_fields_prefix", "buildin_fields_suffix",
    "extract_json", "extract_json_drop_message", "extract_json_prefix", "extract_json_suffix",
    "extract_kv", "extract_kv_drop_message", "extract_kv_prefix", "extract_kv_suffix",
    "extract_kv_sep",
})  # fmt: skip


def keys(entry: Any) -> list[str]:
    return [k for k, _ in entry["contents"]]


def checked(mapper: RecordMapper, record: logging.LogRecord, **kw: Any) -> Any:
    entry = mapper.map(record, **kw)
    check_entry(
        entry, max_value_bytes=mapper.max_value_bytes, max_entry_bytes=mapper.max_entry_bytes
    )
    return entry


class TestDefaults:
    def test_default_keys_order_and_values(self) -> None:
        """The default entry holds the SDK's default fields, in LogFields order, as strings."""
        record = make_record("user %s logged in", ("alice",))
        entry = checked(RecordMapper(), record)
        assert keys(entry) == DEFAULT_KEYS
        c = contents_dict(entry)
        assert c["message"] == "user alice logged in"
        assert c["name"] == "tests.mapping"
        assert c["levelname"] == "INFO"
        assert c["funcName"] == "handler"
        assert c["module"] == "views"
        assert c["pathname"] == "/srv/app/views.py"
        assert c["lineno"] == "42"
        assert c["process"] == str(record.process)
        assert c["thread"] == str(record.thread)
        assert c["processName"] == record.processName
        assert c["threadName"] == record.threadName
        assert entry["topic"] is None
        assert entry["source"] is None
        assert entry["tags"] is None

    def test_extras_follow_fields_in_given_order(self) -> None:
        """extra= attributes come after the fields, in the order given, rendered like the SDK."""
        record = make_record(extra={"user": "bob", "n": 5, "ratio": 0.5, "ok": True})
        entry = checked(RecordMapper(), record)
        assert keys(entry)[len(DEFAULT_KEYS) :] == ["user", "n", "ratio", "ok"]
        c = contents_dict(entry)
        assert (c["user"], c["n"], c["ratio"], c["ok"]) == ("bob", "5", "0.5", "True")

    def test_none_and_callable_values_are_omitted(self) -> None:
        """None and callables are skipped, for fields and extras, as the SDK does."""
        record = make_record(extra={"gone": None, "fn": print, "kept": 0})
        record.funcName = None  # type: ignore[assignment]
        c = contents_dict(checked(RecordMapper(), record))
        assert "gone" not in c
        assert "fn" not in c
        assert "funcName" not in c
        assert c["kept"] == "0"

    def test_option_names_cover_the_sdk_constructor(self) -> None:
        """Every field-selection argument of QueuedLogHandler is a RecordMapper option."""
        assert SDK_OPTIONS <= MAPPER_OPTIONS
        assert not any(name.startswith("_") for name in MAPPER_OPTIONS)

    def test_sdk_style_none_means_default(self) -> None:
        """Passing None for an SDK option gives its default, as in the SDK constructor."""
        # Every field-selection option of the SDK at once (its topic is no field selection).
        mapper = RecordMapper(**dict.fromkeys(SDK_OPTIONS - {"topic"}, None))
        assert mapper.extra is True
        assert mapper.extract_json is False
        assert mapper.extract_kv_sep == "="
        assert mapper.buildin_fields_prefix == ""
        assert keys(checked(mapper, make_record())) == DEFAULT_KEYS

    def test_defaults_of_limits(self) -> None:
        """Values default to the SLS 1 MiB value limit, entries to 5 MiB."""
        mapper = RecordMapper()
        assert mapper.max_value_bytes == DEFAULT_MAX_VALUE_BYTES == 1024 * 1024
        assert mapper.max_entry_bytes == DEFAULT_MAX_ENTRY_BYTES == 5 * 1024 * 1024


class TestValidation:
    @pytest.mark.parametrize(
        ("kwargs", "error"),
        [
            ({"extra": "yes"}, TypeError),
            ({"extract_json": 1}, TypeError),
            ({"buildin_fields_prefix": 3}, TypeError),
            ({"extract_kv_sep": ""}, ValueError),
            ({"max_value_bytes": 10}, ValueError),
            ({"max_value_bytes": 1.5}, TypeError),
            ({"max_entry_bytes": 9 * 1024 * 1024}, ValueError),
            ({"max_entry_bytes": 100}, ValueError),
            ({"fields": "level"}, TypeError),
            ({"fields": [3]}, TypeError),
            ({"format": 3}, TypeError),
            ({"tags": [("a", "b")]}, TypeError),
            ({"context_vars": {"a": 1}}, TypeError),
            ({"topic": 5}, TypeError),
            ({"exception_key": 5}, TypeError),
            ({"context": None}, TypeError),
        ],
    )
    def test_invalid_options_raise_at_construction(
        self, kwargs: dict[str, Any], error: type[Exception]
    ) -> None:
        """Bad configuration fails when the mapper is built, never on the logging path."""
        with pytest.raises(error):
            RecordMapper(**kwargs)

    def test_unknown_enum_member_is_rejected(self) -> None:
        """An Enum member that is not a LogFields member (by name and value) is refused."""
        import enum

        class Other(enum.Enum):
            level = "not-levelname"

        with pytest.raises(ValueError, match="unknown LogFields member"):
            RecordMapper(fields=[Other.level])

    def test_mapper_is_frozen(self) -> None:
        """The configuration cannot change after construction."""
        mapper = RecordMapper()
        with pytest.raises(AttributeError):
            mapper.extra = False  # type: ignore[misc]


class TestFieldSelection:
    def test_names_values_and_members_select_the_same_fields(self) -> None:
        """LogFields members, their names and their values are interchangeable."""
        record = make_record()
        by_member = RecordMapper(fields=[LogFields.level, LogFields.line_no])
        by_name = RecordMapper(fields=["level", "line_no"])
        by_value = RecordMapper(fields=["levelname", "lineno"])
        expected = ["message", "levelname", "lineno"]
        for mapper in (by_member, by_name, by_value):
            assert keys(checked(mapper, record)) == expected

    def test_field_order_is_logfields_order_even_from_a_set(self) -> None:
        """Built-in fields always come in declaration order, whatever the input order."""
        record = make_record()
        mapper = RecordMapper(fields={LogFields.thread_name, LogFields.level, LogFields.module})
        assert keys(checked(mapper, record)) == ["message", "levelname", "module", "threadName"]

    def test_every_logfield_is_rendered(self) -> None:
        """All sixteen LogFields can be selected; asctime appears only once a formatter set it."""
        record = make_record()
        entry = checked(RecordMapper(fields=list(LogFields)), record)
        c = contents_dict(entry)
        assert c["levelno"] == "20"
        assert c["created"] == str(record.created)
        assert c["msecs"] == str(record.msecs)
        assert c["relativeCreated"] == str(record.relativeCreated)
        assert c["filename"] == "views.py"
        assert "asctime" not in c
        formatter = logging.Formatter("%(asctime)s %(message)s")
        c = contents_dict(checked(RecordMapper(fields=list(LogFields), format=formatter), record))
        assert c["asctime"] == record.asctime
        assert c["message"] == f"{record.asctime} hello"

    def test_message_machinery_names_are_ignored(self) -> None:
        """msg, args, exc_info, exc_text, stack_info and message are never plain fields."""
        mapper = RecordMapper(fields=["msg", "args", "exc_info", "exc_text", "message", "level"])
        assert keys(checked(mapper, make_record())) == ["message", "levelname"]

    def test_extra_off_whitelists_named_attributes(self) -> None:
        """With extra=False, non-builtin names in fields pick those extra attributes only."""
        record = make_record(extra={"user": "bob", "secret": "x"})
        mapper = RecordMapper(fields=["level", "user", "missing"], extra=False)
        assert checked(mapper, record)["contents"] == [
            ["message", "hello"],
            ["levelname", "INFO"],
            ["user", "bob"],
        ]

    def test_extra_on_ignores_custom_names_in_fields(self) -> None:
        """With extra=True, a custom name in fields is shipped once, as an extra (SDK rule)."""
        record = make_record(extra={"user": "bob"})
        entry = checked(RecordMapper(fields=["level", "user"]), record)
        assert entry["contents"] == [["message", "hello"], ["levelname", "INFO"], ["user", "bob"]]

    def test_extra_off_drops_extras(self) -> None:
        """extra=False ships no extra= attributes that are not whitelisted."""
        record = make_record(extra={"user": "bob"})
        assert keys(checked(RecordMapper(extra=False), record)) == DEFAULT_KEYS

    @pytest.mark.skipif(sys.version_info < (3, 12), reason="taskName exists from Python 3.12")
    def test_standard_attribute_outside_logfields_can_be_a_field(self) -> None:
        """taskName is standard (never an extra) but can be selected by name."""
        entry = checked(RecordMapper(fields=["level", "taskName"]), make_record())
        assert "taskName" not in contents_dict(entry)  # None outside a task: omitted
        record = make_record()
        record.taskName = "Task-7"
        assert contents_dict(checked(RecordMapper(fields=["taskName"]), record))["taskName"] == (
            "Task-7"
        )

    def test_extras_named_like_logfields_members_are_shipped(self) -> None:
        """An extra called "level" is user data and is kept (the SDK drops it)."""
        record = make_record(extra={"level": "high", "line_no": 3})
        c = contents_dict(checked(RecordMapper(), record))
        assert c["level"] == "high"
        assert c["line_no"] == "3"

    def test_prefix_and_suffix_wrap_builtin_extra_and_context_keys(self) -> None:
        """buildin_fields_prefix/suffix apply to message, fields, exception, extras, context."""
        from yai_spool.handlers.context import bind

        record = make_record(extra={"user": "bob"}, exc_info=exc_info_of(ValueError("x")))
        mapper = RecordMapper(
            fields=[LogFields.level], buildin_fields_prefix="__", buildin_fields_suffix="__"
        )
        with bind(trace_id="t1"):
            entry = checked(mapper, record)
        assert keys(entry) == [
            "__message__",
            "__levelname__",
            "__exc_text__",
            "__user__",
            "__trace_id__",
        ]


class TestMessage:
    def test_message_formatted_with_args(self) -> None:
        """The message is msg % args, formatted at map time."""
        record = make_record("%d items in %s", (3, "cart"))
        assert contents_dict(checked(RecordMapper(), record))["message"] == "3 items in cart"

    def test_unformattable_message_gets_documented_fallback(self) -> None:
        """A failing msg % args becomes '<unformattable: ...>' plus msg and args reprs."""
        record = make_record("%d items", ("three",))
        c = contents_dict(checked(RecordMapper(), record))
        assert c["message"] == (
            "<unformattable: TypeError: %d format: a real number is required, not str> "
            "msg='%d items' args=('three',)"
        )
        assert c[ERROR_KEY].startswith("message: TypeError")

    def test_msg_whose_str_raises(self) -> None:
        """A msg object whose __str__ raises is reported through its repr."""

        bad = StrRaises(RuntimeError, "nope", shown="<Bad>")
        c = contents_dict(checked(RecordMapper(), make_record(bad)))
        assert c["message"] == "<unformattable: RuntimeError: nope> msg=<Bad> args=None"

    def test_dict_msg_without_extract_json_is_its_str(self) -> None:
        """A dict msg is rendered as str(dict), as logging itself does."""
        c = contents_dict(checked(RecordMapper(), make_record({"a": 1})))
        assert c["message"] == "{'a': 1}"

    def test_formatter_drives_message_without_duplicating_the_traceback(self) -> None:
        """A plain logging.Formatter formats the message; the traceback stays in exc_text."""
        record = make_record("boom", exc_info=exc_info_of(ValueError("bad")))
        formatter = logging.Formatter("%(levelname)s|%(name)s|%(message)s")
        c = contents_dict(checked(RecordMapper(format=formatter), record))
        assert c["message"] == "INFO|tests.mapping|boom"
        assert c["exc_text"].startswith("Traceback (most recent call last):")
        assert c["exc_text"].endswith("ValueError: bad")
        assert record.exc_text == c["exc_text"]  # cached like Formatter.format caches it
        assert record.message == "boom"

    def test_formatter_hooks_are_used(self) -> None:
        """formatException/formatStack overrides of a Formatter subclass are honoured."""

        class Custom(logging.Formatter):
            def formatException(self, ei: Any) -> str:
                return "EXC"

            def formatStack(self, stack_info: str) -> str:
                return "STACK"

        record = make_record("m", exc_info=exc_info_of(KeyError("k")), sinfo="Stack (most recent)")
        c = contents_dict(checked(RecordMapper(format=Custom()), record))
        assert (c["message"], c["exc_text"], c["stack_info"]) == ("m", "EXC", "STACK")

    def test_formatter_overriding_format_is_called_whole(self) -> None:
        """A Formatter subclass with its own format() produces the message verbatim."""

        class Json(logging.Formatter):
            def format(self, record: logging.LogRecord) -> str:
                return '{"m": "%s"}' % record.getMessage()  # noqa: UP031

        c = contents_dict(checked(RecordMapper(format=Json()), make_record("x")))
        assert c["message"] == '{"m": "x"}'

    def test_callable_format_and_per_call_override(self) -> None:
        """format may be any callable, and map(record, formatter) overrides it per call."""
        mapper = RecordMapper(format=lambda r: f"[{r.levelname}] {r.getMessage()}")
        record = make_record("hi")
        assert contents_dict(checked(mapper, record))["message"] == "[INFO] hi"
        override = logging.Formatter("%(name)s: %(message)s")
        assert contents_dict(checked(mapper, record, formatter=override))["message"] == (
            "tests.mapping: hi"
        )

    def test_formatter_that_raises_falls_back_to_the_message(self) -> None:
        """A failing formatter leaves getMessage() as the message and a note."""

        def broken(record: logging.LogRecord) -> str:
            raise KeyError("field")

        c = contents_dict(checked(RecordMapper(format=broken), make_record("hi")))
        assert c["message"] == "hi"
        assert "format: KeyError" in c[ERROR_KEY]
        bad_fmt = logging.Formatter("%(missing)s")
        c = contents_dict(checked(RecordMapper(format=bad_fmt), make_record("hi")))
        assert c["message"] == "hi"
        assert "format: ValueError: Formatting field not found" in c[ERROR_KEY]

    def test_non_string_formatter_output_is_rendered(self) -> None:
        """A callable returning a non-str gets the value rules."""
        c = contents_dict(checked(RecordMapper(format=lambda r: {"k": 1}), make_record()))
        assert c["message"] == '{"k": 1}'


class TestExceptionAndStack:
    def test_exception_and_stack_have_their_own_fields(self) -> None:
        """exc_info and stack_info go to exc_text and stack_info; the message stays clean."""
        record = make_record("failed", exc_info=exc_info_of(ValueError("bad")), sinfo="Stack:\n f")
        c = contents_dict(checked(RecordMapper(), record))
        assert c["message"] == "failed"
        assert c["exc_text"].splitlines()[-1] == "ValueError: bad"
        assert c["stack_info"] == "Stack:\n f"

    def test_none_keys_append_like_logging_formatter(self) -> None:
        """exception_key=None and stack_key=None append the texts as Formatter.format does."""
        record = make_record("failed", exc_info=exc_info_of(ValueError("bad")), sinfo="Stack:\n f")
        expected = logging.Formatter().format(make_record("failed", sinfo="Stack:\n f"))
        mapper = RecordMapper(exception_key=None, stack_key=None)
        c = contents_dict(checked(mapper, record))
        assert c["message"] == logging.Formatter().format(record)
        assert "exc_text" not in c
        assert "stack_info" not in c
        assert expected.endswith("Stack:\n f")

    def test_custom_keys_for_exception_and_stack(self) -> None:
        """The exception and stack keys are configurable."""
        record = make_record(exc_info=exc_info_of(ValueError("bad")), sinfo="S")
        mapper = RecordMapper(exception_key="error.stack", stack_key="where")
        c = contents_dict(checked(mapper, record))
        assert "error_stack" in c  # sanitised like any key
        assert c["where"] == "S"

    def test_preformatted_exc_text_without_exc_info_is_kept(self) -> None:
        """A record that crossed a pickle boundary (exc_text only) still ships its traceback."""
        record = make_record("x")
        record.exc_text = "Traceback: earlier"
        assert contents_dict(checked(RecordMapper(), record))["exc_text"] == "Traceback: earlier"

    def test_broken_exc_info_gets_a_fallback(self) -> None:
        """An exc_info that cannot be formatted becomes a marker, never an error."""
        record = make_record("x")
        record.exc_info = ("not", "a", "triple")  # type: ignore[assignment]
        c = contents_dict(checked(RecordMapper(), record))
        assert c["exc_text"].startswith("<unformattable exception: ")
        assert "exc_info:" in c[ERROR_KEY]


class TestExtraction:
    def test_extract_json_ships_dict_items(self) -> None:
        """A dict msg is expanded into fields with the extract_json prefix/suffix."""
        record = make_record({"user": "bob", "n": 2, "none": None, "tags": ["a"]})
        mapper = RecordMapper(extract_json=True, extract_json_prefix="j_", extract_json_suffix="")
        c = contents_dict(checked(mapper, record))
        assert c["j_user"] == "bob"
        assert c["j_n"] == "2"
        assert c["j_none"] == ""  # the SDK renders None as "" here
        assert c["j_tags"] == '["a"]'
        assert c["message"] == str(record.msg)

    def test_extract_json_drop_message(self) -> None:
        """drop_message omits the message only when something was extracted."""
        mapper = RecordMapper(extract_json=True, extract_json_drop_message=True)
        c = contents_dict(checked(mapper, make_record({"a": 1})))
        assert c["a"] == "1"
        assert "message" not in c
        assert "message" in contents_dict(checked(mapper, make_record({})))
        assert "message" in contents_dict(checked(mapper, make_record("text")))

    def test_dropped_message_frees_its_key(self) -> None:
        """With the message dropped, an extracted "message" key keeps its name."""
        mapper = RecordMapper(extract_json=True, extract_json_drop_message=True)
        c = contents_dict(checked(mapper, make_record({"message": "inner"})))
        assert c["message"] == "inner"

    def test_extracted_key_colliding_with_builtin_is_renamed(self) -> None:
        """Built-in fields win: a JSON key equal to a field key gets a _2 suffix."""
        mapper = RecordMapper(extract_json=True)
        c = contents_dict(checked(mapper, make_record({"levelname": "fake"})))
        assert c["levelname"] == "INFO"
        assert c["levelname_2"] == "fake"

    def test_extract_kv_pairs_and_quoted_values(self) -> None:
        """k=v and k="v v" pairs are extracted with the kv prefix/suffix."""
        record = make_record('user=bob  took = 12.5 ms note="a b c" a-b=1')
        mapper = RecordMapper(extract_kv=True, extract_kv_prefix="kv_", extract_kv_suffix="_x")
        c = contents_dict(checked(mapper, record))
        assert c["kv_user_x"] == "bob"
        assert c["kv_took_x"] == "12.5"
        assert c["kv_note_x"] == "a b c"
        assert c["kv_a_b_x"] == "1"
        assert "message" in c

    def test_extract_kv_scans_the_formatted_message(self) -> None:
        """Pairs whose values arrive as %-arguments are found (the SDK scans the raw msg)."""
        c = contents_dict(checked(RecordMapper(extract_kv=True), make_record("user=%s", ("bob",))))
        assert c["user"] == "bob"

    def test_extract_kv_custom_and_regex_special_separators(self) -> None:
        """The separator is escaped, so '|' works as a literal separator."""
        c = contents_dict(
            checked(RecordMapper(extract_kv=True, extract_kv_sep=":"), make_record("a:1 b: 2"))
        )
        assert (c["a"], c["b"]) == ("1", "2")
        c = contents_dict(
            checked(RecordMapper(extract_kv=True, extract_kv_sep="|"), make_record("a|1"))
        )
        assert c["a"] == "1"

    def test_extract_kv_drop_message(self) -> None:
        """drop_message omits the message when pairs were found, keeps it otherwise."""
        mapper = RecordMapper(extract_kv=True, extract_kv_drop_message=True)
        assert "message" not in contents_dict(checked(mapper, make_record("a=1")))
        assert contents_dict(checked(mapper, make_record("no pairs")))["message"] == "no pairs"

    def test_extract_kv_on_bytes_msg(self) -> None:
        """A bytes msg is decoded (backslashreplace) before scanning."""
        c = contents_dict(checked(RecordMapper(extract_kv=True), make_record(b"a=1 b=\xff")))
        assert c["a"] == "1"

    def test_extract_json_wins_over_kv_for_dict_messages(self) -> None:
        """As in the SDK: a dict msg goes to extract_json; extract_kv handles text msgs."""
        mapper = RecordMapper(extract_json=True, extract_kv=True)
        assert contents_dict(checked(mapper, make_record({"a": "1"})))["a"] == "1"
        assert contents_dict(checked(mapper, make_record("b=2")))["b"] == "2"


class TestTime:
    def test_time_from_created(self) -> None:
        """time/time_ns are the record's created split exactly, rounded to the nanosecond."""
        record = make_record()
        record.created = 1_700_000_000.25
        entry = checked(RecordMapper(), record)
        assert (entry["time"], entry["time_ns"]) == (1_700_000_000, 250_000_000)

    def test_created_ns_attribute_wins(self) -> None:
        """An int created_ns (from a custom record factory) is used exactly, and not shipped."""
        record = make_record(extra={"created_ns": 1_700_000_000_123_456_789})
        entry = checked(RecordMapper(), record)
        assert (entry["time"], entry["time_ns"]) == (1_700_000_000, 123_456_789)
        assert "created_ns" not in contents_dict(entry)

    def test_fraction_never_reaches_one_second(self) -> None:
        """A fraction that rounds up to 1e9 ns is clamped to 999_999_999."""
        record = make_record()
        record.created = 1_700_000_000.9999999999
        entry = checked(RecordMapper(), record)
        assert entry["time_ns"] <= 999_999_999

    @pytest.mark.parametrize("created", [float("nan"), -1.0, 2.0**40, "soon", None])
    def test_invalid_created_falls_back_to_now(self, created: object) -> None:
        """A missing or out-of-range created uses the current time and leaves a note."""
        record = make_record()
        record.created = created  # type: ignore[assignment]
        entry = checked(RecordMapper(), record)
        assert entry["time"] > 1_600_000_000
        assert "created: invalid" in contents_dict(entry)[ERROR_KEY]

    def test_float_subclass_and_int_created(self) -> None:
        """Numeric created values of other types (numpy-like floats, ints) are accepted."""

        class F(float):
            pass

        record = make_record()
        record.created = F(1_700_000_000.5)
        assert checked(RecordMapper(), record)["time_ns"] == 500_000_000
        record.created = 1_700_000_001  # type: ignore[assignment]
        entry = checked(RecordMapper(), record)
        assert (entry["time"], entry["time_ns"]) == (1_700_000_001, 0)


class TestOverrides:
    def test_topic_source_tags_from_extra_are_not_contents(self) -> None:
        """sls_topic/sls_source/sls_tags set the entry's fields and are not shipped as contents."""
        record = make_record(
            extra={"sls_topic": "orders", "sls_source": "web-1", "sls_tags": {"b": "2", "a": 1}}
        )
        entry = checked(RecordMapper(), record)
        assert entry["topic"] == "orders"
        assert entry["source"] == "web-1"
        assert entry["tags"] == [["a", "1"], ["b", "2"]]
        assert not {"sls_topic", "sls_source", "sls_tags"} & set(contents_dict(entry))

    def test_configured_defaults_and_merge(self) -> None:
        """Configured topic/source/tags apply; record tags are merged over configured ones."""
        mapper = RecordMapper(topic="app", source="host", tags={"env": "prod", "team": "x"})
        entry = checked(mapper, make_record())
        assert (entry["topic"], entry["source"]) == ("app", "host")
        assert entry["tags"] == [["env", "prod"], ["team", "x"]]
        entry = checked(mapper, make_record(extra={"sls_tags": {"team": "y", "drop": None}}))
        assert entry["tags"] == [["env", "prod"], ["team", "y"]]
        assert entry["topic"] == "app"

    def test_topic_cut_to_128_bytes_on_a_character_boundary(self) -> None:
        """Topic and source are cut to 128 UTF-8 bytes without splitting a character."""
        record = make_record(extra={"sls_topic": "é" * 100, "sls_source": b"\xffsrc"})
        entry = checked(RecordMapper(), record)
        assert entry["topic"] == "é" * 64
        assert entry["source"] == "\\xffsrc"

    def test_bad_tags_leave_a_note(self) -> None:
        """A non-mapping sls_tags is ignored with a note; the entry is still produced."""
        entry = checked(RecordMapper(tags={"a": "b"}), make_record(extra={"sls_tags": ["x"]}))
        assert entry["tags"] == [["a", "b"]]
        assert "sls_tags" in contents_dict(entry)[ERROR_KEY]


class TestRecordUntouched:
    def test_only_formatter_caches_are_written(self) -> None:
        """The record is not copied or changed beyond logging's own caches (exc_text)."""
        record = make_record("a %s", ("b",), extra={"x": 1}, exc_info=exc_info_of(ValueError()))
        before = dict(record.__dict__)
        RecordMapper().map(record)
        after = dict(record.__dict__)
        changed = {k for k in after if after[k] is not before.get(k)}
        assert changed == {"exc_text"}
