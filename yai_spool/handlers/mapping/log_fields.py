"""The record fields a mapper can select: ``LogFields``, with the names of ``aliyun.log``.

Owns :class:`LogFields` (names and values equal the SDK's), the SDK's default selection and
the names that are never selectable (the message and exception machinery).
"""

from __future__ import annotations

import enum
from typing import Final


class LogFields(enum.Enum):
    """Record fields that can be selected; names and values equal ``aliyun.log.LogFields``.

    The value is the ``LogRecord`` attribute read *and* the key written (plus prefix/suffix).
    """

    record_name = "name"
    level = "levelname"
    file_name = "filename"
    func_name = "funcName"
    module = "module"
    file_path = "pathname"
    line_no = "lineno"
    process_id = "process"
    process_name = "processName"
    thread_id = "thread"
    thread_name = "threadName"

    level_no = "levelno"
    asc_time = "asctime"
    created_timestamp = "created"
    micro_second = "msecs"
    relative_created = "relativeCreated"


#: The SDK's ``DEFAULT_RECORD_LOG_FIELDS``, in declaration order.
DEFAULT_FIELDS: Final[tuple[LogFields, ...]] = (
    LogFields.record_name,
    LogFields.level,
    LogFields.func_name,
    LogFields.module,
    LogFields.file_path,
    LogFields.line_no,
    LogFields.process_id,
    LogFields.process_name,
    LogFields.thread_id,
    LogFields.thread_name,
)

# Never selectable as fields: they are the message and exception machinery (SDK BLACK_FIELD_LIST).
_BLACK_FIELDS: Final = frozenset({"exc_info", "exc_text", "stack_info", "msg", "args", "message"})
_FIELDS_BY_VALUE: Final = {m.value: m for m in LogFields}

_FieldSpec = LogFields | enum.Enum | str
