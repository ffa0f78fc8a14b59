"""Keys, values and limits: the defined results for hostile input."""

from __future__ import annotations

import datetime as dt
import json
import math
from decimal import Decimal
from typing import Any

import pytest
from mapping_support import StrRaises, check_entry, contents_dict, make_record

from yai_spool.handlers.mapping import (
    ERROR_KEY,
    MAX_KEY_BYTES,
    RESERVED_KEYS,
    TRUNCATED_KEY,
    RecordMapper,
    clean_text,
    sanitize_key,
)


def one_value(value: object, **options: Any) -> str:
    """Map a record whose single extra is ``value`` and return that extra's text."""
    mapper = RecordMapper(fields=[], **options)
    entry = mapper.map(make_record(extra={"v": value}))
    check_entry(
        entry, max_value_bytes=mapper.max_value_bytes, max_entry_bytes=mapper.max_entry_bytes
    )
    return contents_dict(entry)["v"]


class TestKeys:
    @pytest.mark.parametrize(
        ("raw", "key"),
        [
            ("user_id", "user_id"),
            ("a-b.c:d", "a_b_c_d"),
            ("1abc", "_1abc"),
            ("", "_"),
            ("中文", "__"),
            ("ключ", "____"),
            ("__topic__", "_topic_"),
            ("__time__", "_time_"),
            ("__source__", "_source_"),
            ("__partition_time__", "_partition_time_"),
            ("__extract_others__", "extract_others"),
            ("_extract_others_", "extract_others"),
            ("__tag__:client", "__tag___client"),
            ("a" * 200, "a" * 128),
            ("9" * 200, "_" + "9" * 127),
            ("\ud800x", "_x"),
            (12, "_12"),
            (None, "None"),
        ],
    )
    def test_sanitize_key_table(self, raw: object, key: str) -> None:
        """Keys follow the SLS rules: [A-Za-z_][A-Za-z0-9_]*, 1-128 bytes, not reserved."""
        assert sanitize_key(raw) == key

    def test_reserved_keys_never_survive(self) -> None:
        """No reserved key maps to a reserved key."""
        for reserved in RESERVED_KEYS:
            assert sanitize_key(reserved) not in RESERVED_KEYS

    def test_duplicates_after_sanitising_are_numbered(self) -> None:
        """Two extras that sanitise alike get _2, _3 in order of appearance."""
        record = make_record(extra={"a-b": 1, "a_b": 2, "a.b": 3})
        entry = RecordMapper(fields=[]).map(record)
        assert entry["contents"][1:] == [["a_b", "1"], ["a_b_2", "2"], ["a_b_3", "3"]]

    def test_deduplicated_long_key_stays_within_128_bytes(self) -> None:
        """The numeric suffix replaces the tail of a 128-byte key."""
        long = "k" * 130
        record = make_record(extra={long: 1, long + "-": 2})
        keys = [k for k, _ in RecordMapper(fields=[]).map(record)["contents"]]
        assert keys[1:] == ["k" * 128, "k" * 126 + "_2"]
        assert all(len(k) <= MAX_KEY_BYTES for k in keys)

    def test_non_string_attribute_names(self) -> None:
        """A record __dict__ with a non-str key (hostile code) still maps."""
        record = make_record()
        record.__dict__[7] = "seven"  # type: ignore[index]
        entry = RecordMapper(fields=[]).map(record)
        assert contents_dict(entry)["_7"] == "seven"


class TestStrings:
    def test_surrogate_escape_bytes_become_backslash_x(self) -> None:
        """U+DC80..U+DCFF (surrogateescape) shows the original byte as \\xNN."""
        assert one_value(b"caf\xe9".decode("utf-8", "surrogateescape")) == "caf\\xe9"

    def test_other_lone_surrogates_become_backslash_u(self) -> None:
        """Any other lone surrogate becomes \\udNNN."""
        assert one_value("a\ud800b") == "a\\ud800b"

    def test_surrogate_pairs_are_joined(self) -> None:
        """A valid high+low pair in a str becomes the character it encodes."""
        assert one_value("x\ud83d\ude00y") == "x\U0001f600y"

    def test_bytes_decode_with_backslashreplace(self) -> None:
        """Invalid UTF-8 bytes are kept visible as \\xNN."""
        assert one_value(b"ok \xff\xfe") == "ok \\xff\\xfe"
        assert one_value(bytearray(b"\xc3\xa9")) == "é"
        assert one_value(memoryview(b"mv")) == "mv"

    def test_non_ascii_kept(self) -> None:
        """Valid non-ASCII text passes through unchanged."""
        assert one_value("日本語 ✓") == "日本語 ✓"


class TestOddTypes:
    def test_scalars_render_with_str(self) -> None:
        """Numbers, bools, datetimes, Decimals, sets render with str(), like the SDK."""
        assert one_value(42) == "42"
        assert one_value(-1.5) == "-1.5"
        assert one_value(math.nan) == "nan"
        assert one_value(math.inf) == "inf"
        assert one_value(False) == "False"
        assert one_value(Decimal("1.10")) == "1.10"
        assert one_value(dt.datetime(2024, 1, 2, 3, 4, 5)) == "2024-01-02 03:04:05"
        assert one_value(frozenset({1})) == "frozenset({1})"
        assert one_value({1, 2}) == "{1, 2}"

    def test_huge_int_becomes_hex(self) -> None:
        """An int beyond Python's str() digit limit is rendered in hex."""
        huge = 1 << 20000
        assert one_value(huge) == hex(huge)
        assert contents_dict(RecordMapper(fields=[]).map(make_record(extra={"v": [huge]})))[
            "v"
        ] == json.dumps([hex(huge)])

    def test_containers_are_json(self) -> None:
        """dict/list/tuple become JSON with the SDK's separators, non-ASCII kept."""
        assert one_value({"a": [1, 2.5, None, True], "b": "é"}) == (
            '{"a": [1, 2.5, null, true], "b": "é"}'
        )
        assert one_value((1, "x")) == '[1, "x"]'
        assert one_value({"b": "é"}, json_ensure_ascii=True) == '{"b": "\\u00e9"}'

    def test_json_renders_unencodable_members_with_str(self) -> None:
        """Inside JSON, sets, datetimes, Decimals and objects become str() strings."""
        value = {"when": dt.date(2024, 1, 2), "d": Decimal("2.5"), "s": {3}, "b": b"\xff"}
        assert json.loads(one_value(value)) == {
            "when": "2024-01-02",
            "d": "2.5",
            "s": "{3}",
            "b": "\\xff",
        }

    def test_recursive_structures(self) -> None:
        """Cycles become "<recursion>" inside otherwise valid JSON."""
        loop: list[Any] = [1]
        loop.append(loop)
        assert json.loads(one_value(loop)) == [1, "<recursion>"]
        d: dict[str, Any] = {"k": 1}
        d["self"] = d
        assert json.loads(one_value(d)) == {"k": 1, "self": "<recursion>"}

    def test_non_string_dict_keys(self) -> None:
        """Keys JSON refuses (tuples, objects) are rendered with str()."""
        assert json.loads(one_value({(1, 2): "t", None: 1, 2.5: 2})) == {
            "(1, 2)": "t",
            "null": 1,
            "2.5": 2,
        }

    def test_deep_nesting(self) -> None:
        """Nesting far beyond the recursion limit yields valid JSON with "<too deep>"."""
        deep: list[Any] = []
        node = deep
        for _ in range(100_000):
            child: list[Any] = []
            node.append(child)
            node = child
        text = one_value(deep)
        assert "<too deep>" in text
        json.loads(text)

    def test_objects_whose_str_or_repr_raise(self) -> None:
        """str() failing falls back to repr(); both failing gives "<unprintable T: E>"."""

        assert one_value(StrRaises(shown="NoStr()")) == "NoStr()"
        neither = StrRaises()  # repr() raises too
        assert one_value(neither) == f"<unprintable {StrRaises.__qualname__}: ValueError>"
        assert json.loads(one_value([neither]))[0].startswith("<unprintable ")

    def test_str_subclass_results_become_exact_str(self) -> None:
        """A __str__ returning a str subclass still yields a plain str value."""

        class S(str):
            pass

        class Obj:
            def __str__(self) -> str:
                return S("sub")

        value = one_value(Obj())
        assert value == "sub"
        assert type(value) is str


class TestLimits:
    def test_value_truncated_with_marker(self) -> None:
        """An oversize value is cut so that text plus marker fit max_value_bytes exactly."""
        value = one_value("x" * 1000, max_value_bytes=100)
        assert len(value) <= 100
        assert value.startswith("x" * 70)
        dropped = 1000 - value.index("…")
        assert value.endswith(f"…[truncated {dropped} bytes]")

    def test_cut_on_utf8_boundary(self) -> None:
        """A multi-byte character is never split by the cut."""
        for max_bytes in range(64, 80):
            value = clean_text("é" * 100 + "€" * 100, max_bytes)
            assert len(value.encode("utf-8")) <= max_bytes
            kept = value[: value.index("…")]
            assert set(kept) <= {"é"}
            assert value.endswith(f"[truncated {500 - len(kept.encode())} bytes]")

    def test_default_limit_is_one_mebibyte(self) -> None:
        """With defaults, a 2 MiB extra is cut to 1 MiB including the marker."""
        value = one_value("y" * (2 << 20))
        assert len(value.encode()) <= 1 << 20
        assert value.endswith("bytes]")

    def test_message_and_traceback_are_bounded_too(self) -> None:
        """The message, exc_text and stack_info obey max_value_bytes."""
        mapper = RecordMapper(max_value_bytes=128, fields=[])
        record = make_record("m" * 500, sinfo="s" * 500)
        record.exc_text = "e" * 500
        entry = mapper.map(record)
        check_entry(entry, max_value_bytes=128, max_entry_bytes=mapper.max_entry_bytes)
        assert all(v.endswith("bytes]") for _, v in entry["contents"])

    def test_entry_limit_cuts_largest_values_first(self) -> None:
        """Over max_entry_bytes, big values share one cap; small fields stay intact."""
        mapper = RecordMapper(max_entry_bytes=8192)
        record = make_record("m" * 6000, extra={"big": "b" * 6000, "small": "ok"})
        entry = mapper.map(record)
        check_entry(entry, max_value_bytes=mapper.max_value_bytes, max_entry_bytes=8192)
        c = contents_dict(entry)
        assert c["small"] == "ok"
        assert c["levelname"] == "INFO"
        assert c["message"].endswith("bytes]")
        assert c["big"].endswith("bytes]")
        assert c[TRUNCATED_KEY].startswith("entry of ")
        assert "2 values cut, 0 fields dropped" in c[TRUNCATED_KEY]

    def test_entry_limit_drops_fields_when_keys_alone_do_not_fit(self) -> None:
        """Thousands of fields: trailing ones are dropped and the note says how many."""
        mapper = RecordMapper(max_entry_bytes=4096, fields=[])
        record = make_record(extra={f"field_{i:04d}": "v" * 20 for i in range(2000)})
        entry = mapper.map(record)
        check_entry(entry, max_value_bytes=mapper.max_value_bytes, max_entry_bytes=4096)
        c = contents_dict(entry)
        assert c["message"] == "hello"
        assert "fields dropped" in c[TRUNCATED_KEY]


class TestBrokenRecords:
    @pytest.mark.parametrize("record", [None, object(), 42, "text"])
    def test_not_a_record_gives_minimal_entry(self, record: Any) -> None:
        """Something that is not a LogRecord yields the minimal entry with an error marker."""
        mapper = RecordMapper()
        entry = mapper.map(record)
        check_entry(
            entry, max_value_bytes=mapper.max_value_bytes, max_entry_bytes=mapper.max_entry_bytes
        )
        c = contents_dict(entry)
        assert c["message"].startswith("<unmappable record: ")
        assert ERROR_KEY in c

    def test_hostile_standard_attributes(self) -> None:
        """Standard attributes replaced by junk still give every field a value."""

        class Boom:
            def __str__(self) -> str:
                raise RuntimeError

            def __repr__(self) -> str:
                raise RuntimeError

            def __bool__(self) -> bool:
                raise RuntimeError

        record = make_record()
        record.__dict__.update(
            name=b"\xffname",
            levelname=Boom(),
            lineno=1 << 20000,
            args=Boom(),
            exc_info=Boom(),
            stack_info=Boom(),
            msg=Boom(),
            sls_context=Boom(),
            sls_topic=Boom(),
        )
        mapper = RecordMapper()
        entry = mapper.map(record)
        check_entry(
            entry, max_value_bytes=mapper.max_value_bytes, max_entry_bytes=mapper.max_entry_bytes
        )
        c = contents_dict(entry)
        assert c["name"] == "\\xffname"
        assert c["levelname"] == f"<unprintable {Boom.__qualname__}: RuntimeError>"
        assert c["lineno"] == hex(1 << 20000)
        assert c["message"].startswith("<unformattable: RuntimeError")
        assert entry["topic"].startswith("<unprintable ")
        for part in ("message:", "exc_info:", "stack_info:", "context:"):
            assert part in c[ERROR_KEY]
