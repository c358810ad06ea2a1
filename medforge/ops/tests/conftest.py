"""Fixtures for the operations tests: GPUs, a pack, and sessions placed in a given state."""
from __future__ import annotations

import io
import itertools
import json
import logging

import pytest
import structlog
from django.utils import timezone

from sessions_app.models import GPU, TERMINAL_STATUSES, Pack, Session

_gpu_numbers = itertools.count(100)


@pytest.fixture
def gpus(db):
    """Four GPUs, index 0..3, all enabled."""
    return [GPU.objects.create(index=i, uuid=f"GPU-ops-{i:04d}", name="Test GPU", memory_mb=1024)
            for i in range(4)]


@pytest.fixture
def pack(db):
    return Pack.objects.create(slug="ops-pack", name="Ops pack", image="sha256:" + "a" * 64,
                               is_default=True)


@pytest.fixture
def place_session(pack):
    """place_session(owner, status, gpu) → a Session row in that state (as the lifecycle
    would leave it: active sessions hold their GPU, terminal ones have released it)."""

    def make(owner, status, gpu, **extra):
        active = status not in TERMINAL_STATUSES
        now = timezone.now()
        return Session.objects.create(
            owner=owner, exposure=extra.pop("exposure", "external"), pack=pack, gpu=gpu,
            active_gpu=gpu if active else None, status=status,
            started_at=now if status != "starting" else None,
            stopped_at=None if active else now, **extra)

    return make


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
