"""json_lines: what the platform logged during a test, through its own JSON formatter."""
from __future__ import annotations

import io
import json
import logging

import pytest
import structlog


@pytest.fixture
def json_lines():
    """json_lines() → what the platform logged so far, rendered by its own JSON formatter."""
    root = logging.getLogger()
    formatter = next(h.formatter for h in root.handlers
                     if isinstance(h.formatter, structlog.stdlib.ProcessorFormatter))
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root.addHandler(handler)

    def lines() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]

    try:
        yield lines
    finally:
        root.removeHandler(handler)
        structlog.contextvars.clear_contextvars()
