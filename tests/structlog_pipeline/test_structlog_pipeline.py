"""structlog -> stdlib logging -> SpoolHandler -> the emulator, configured as README says.

Real structlog, a real handler, the emulator of the test kit: key-values arrive as SLS
fields, exceptions as ``exc_text``, bound and contextvar values too; keys ``logging``
refuses in ``extra=`` (``name``, ``filename``...) arrive instead of raising into the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog
from opentelemetry.sdk.trace import TracerProvider

import yai_spool.handlers.structlog
from yai_spool.testing import ABSENT, ANY, SLSEmulator, attached, contains, regex


@pytest.fixture
def shop(sls_handler: logging.Handler) -> Iterator[logging.Logger]:
    """README's structlog configuration over a stdlib logger that has the SpoolHandler."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.filter_by_level,
            yai_spool.handlers.structlog.render_to_log_kwargs,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    try:
        with attached("shop", sls_handler) as stdlib:
            yield stdlib
    finally:
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()


@pytest.mark.usefixtures("shop")
def test_key_values_arrive_as_fields(sls_emulator: SLSEmulator) -> None:
    log = structlog.get_logger("shop.orders")
    log.info("order placed", order_id="o-1", amount=12.5, items=3, user={"id": 7}, paid=True)
    log.bind(tenant="acme").warning("stock low", sku="s-9")
    with structlog.contextvars.bound_contextvars(request_id="r-1"):
        log.info("in a request")
    log.debug("filtered by level")
    [placed] = sls_emulator.wait_for(1, message="order placed")
    assert placed.matches(
        order_id="o-1", amount="12.5", items="3", user='{"id": 7}', paid="True",
        levelname="INFO", name="shop.orders", lineno=ANY, event=ABSENT,
    )  # fmt: skip
    [low] = sls_emulator.wait_for(1, message="stock low")
    assert low.matches(tenant="acme", sku="s-9", levelname="WARNING")
    [req] = sls_emulator.wait_for(1, message="in a request", request_id="r-1")
    assert "tenant" not in req
    assert sls_emulator.records(message="filtered by level") == []
    assert placed["funcName"] == "test_key_values_arrive_as_fields"  # the caller, not structlog


@pytest.mark.usefixtures("shop")
def test_exceptions_arrive_as_exc_text(sls_emulator: SLSEmulator) -> None:
    log = structlog.get_logger("shop.payments")
    try:
        _ = 1 / 0
    except ZeroDivisionError:
        log.exception("charge failed", step=2)
    [failed] = sls_emulator.wait_for(1, message="charge failed")
    assert failed.matches(
        levelname="ERROR",
        step="2",
        exc_text=contains("ZeroDivisionError: division by zero"),
        exception=ABSENT,
        exc_info=ABSENT,
    )
    assert failed["exc_text"].startswith("Traceback (most recent call last):")


@pytest.mark.usefixtures("shop")
def test_keys_logging_refuses_in_extra_still_arrive(sls_emulator: SLSEmulator) -> None:
    """``name=``/``filename=``/``message=`` would make logging raise KeyError into the caller."""
    log = structlog.get_logger("shop.auth")
    log.info("login", name="ana", filename="report.csv", message="hello", process="checkout")
    [login] = sls_emulator.wait_for(1, message="login")
    assert login.matches(
        name="shop.auth",  # the logger name keeps its field
        name_2="ana",
        filename="report.csv",
        message_2="hello",
        process=regex(r"\d+"),  # the pid field
        process_2="checkout",
        sls_extra=ABSENT,
    )


def test_structlogs_own_renderer_raises_on_those_keys() -> None:
    """What the processor removes: the stock renderer crashes the call."""
    structlog.configure(
        processors=[structlog.stdlib.render_to_log_kwargs],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    try:
        with pytest.raises(KeyError, match="Attempt to overwrite 'name'"):
            structlog.get_logger("shop.stock").warning("login", name="ana")
    finally:
        structlog.reset_defaults()


@pytest.mark.usefixtures("shop")
def test_structlog_records_carry_otel_span_ids(sls_emulator: SLSEmulator) -> None:
    provider = TracerProvider()
    try:
        with provider.get_tracer("t").start_as_current_span("checkout") as span:
            structlog.get_logger("shop.orders").info("traced", order_id="o-2")
    finally:
        provider.shutdown()
    [traced] = sls_emulator.wait_for(1, message="traced")
    assert traced["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert traced["order_id"] == "o-2"
