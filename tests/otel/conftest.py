"""Fixtures of the OpenTelemetry tests: a real SDK tracer (no global provider is installed)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import Tracer


@pytest.fixture
def tracer() -> Iterator[Tracer]:
    """A tracer of a fresh SDK ``TracerProvider`` (samples everything)."""
    provider = TracerProvider()
    yield provider.get_tracer("yai-spool-tests")
    provider.shutdown()


@pytest.fixture
def unsampled_tracer() -> Iterator[Tracer]:
    """A tracer whose spans are sampled out: valid ids, not recording, flags 00."""
    provider = TracerProvider(sampler=ALWAYS_OFF)
    yield provider.get_tracer("yai-spool-tests")
    provider.shutdown()
