"""Structured logs (SPEC §8): JSON lines carrying request_id/correlation_id, and in Celery
tasks the correlation id of the request that queued them plus the task id."""
from __future__ import annotations

import time
import uuid

import pytest
import structlog

from medforge.celery import app
from medforge.ops.logcontext import bind_session, session_fields


@app.task(name="medforge.ops.tests.log_probe")
def log_probe(marker: str) -> None:
    structlog.get_logger("medforge.ops.tests").info("probe.ran", marker=marker)


@pytest.mark.django_db
def test_request_lines_carry_request_and_correlation_ids(client, json_lines):
    resp = client.post("/api/v2/auth/logout", HTTP_ORIGIN="https://evil.example",
                       HTTP_X_CORRELATION_ID="corr-from-client-1")
    assert resp.status_code == 403
    line = next(x for x in json_lines() if x["event"] == "security.origin_refused")
    assert line["request_id"] == resp["X-Request-Id"]
    assert line["correlation_id"] == "corr-from-client-1"
    assert line["level"] == "info" and "timestamp" in line


def test_session_lifecycle_fields(json_lines):
    class FakeSession:  # the three fields only; the model's own tests cover the rest
        pk = uuid.UUID("12345678-1234-5678-1234-567812345678")
        owner_id = 42
        slug = "abcdefgh"

    structlog.contextvars.bind_contextvars(request_id="req-12345678", correlation_id="corr-1")
    bind_session(FakeSession())
    structlog.get_logger("sessions_app").info("session.running", upstream="10.0.0.2:8080")
    line = json_lines()[-1]
    assert line["event"] == "session.running"
    assert line["session_id"] == "12345678-1234-5678-1234-567812345678"
    assert line["user_id"] == "42" and line["slug"] == "abcdefgh"
    assert line["request_id"] == "req-12345678" and line["correlation_id"] == "corr-1"
    assert session_fields(FakeSession()) == {
        "session_id": str(FakeSession.pk), "user_id": "42", "slug": "abcdefgh"}


def test_eager_task_keeps_the_callers_correlation(json_lines):
    structlog.contextvars.bind_contextvars(request_id="req-eager-1", correlation_id="corr-eager")
    result = log_probe.apply(args=["eager"])
    line = next(x for x in json_lines() if x.get("marker") == "eager")
    assert line["correlation_id"] == "corr-eager"
    assert line["task_id"] == result.id
    assert line["task_name"] == "medforge.ops.tests.log_probe"
    # After the task the caller's context is what it was.
    assert structlog.contextvars.get_contextvars().get("task_id") is None


@pytest.mark.slow
def test_worker_task_lines_carry_the_publishers_correlation_id(json_lines):
    """A real Celery worker (Redis broker) logs the task with the id of the request that
    queued it: the publisher stamps it into the message headers."""
    from celery.contrib.testing.worker import start_worker

    queue = f"ops-log-probe-{uuid.uuid4().hex[:8]}"  # our own queue: no one else's tasks
    marker = uuid.uuid4().hex
    with start_worker(app, pool="solo", concurrency=1, queues=[queue],
                      perform_ping_check=False, shutdown_timeout=10, loglevel="INFO"):
        structlog.contextvars.bind_contextvars(request_id="req-worker-1",
                                               correlation_id="corr-worker-1")
        sent = log_probe.apply_async(args=[marker], queue=queue)
        structlog.contextvars.clear_contextvars()
        deadline = time.monotonic() + 30
        line = None
        while line is None and time.monotonic() < deadline:
            line = next((x for x in json_lines() if x.get("marker") == marker), None)
            time.sleep(0.05)
    assert line is not None, "the worker never ran the probe task"
    assert line["correlation_id"] == "corr-worker-1"
    assert line["task_id"] == sent.id
    assert "request_id" not in line  # the worker dropped everything else of the publisher's
