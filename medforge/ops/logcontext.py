"""Log context for Celery tasks and session lifecycle lines.

Requests get `request_id`/`correlation_id` from RequestIdMiddleware. Tasks get them here: the
publisher stamps the current correlation id into the message headers, and the worker binds it
(plus `task_id`, `task_name`) around the task, so a lifecycle line logged by the start task
carries the id of the API request that queued it. Connected in OpsConfig.ready(), which the
Celery worker runs through Django's setup.

Session code logs lifecycle lines with `session_fields(session)` (or binds them with
`bind_session(session)`), which gives `session_id`, `user_id` and `slug`.
"""
from __future__ import annotations

import os
from typing import Any

import structlog
from celery import signals

# Not "correlation_id": Celery itself sets a message property of that name to the task id.
CORRELATION_HEADER = "medforge_correlation_id"

_tokens: dict[str, Any] = {}


def session_fields(session) -> dict[str, str]:
    """The fields every session lifecycle line carries."""
    return {
        "session_id": str(session.pk),
        "user_id": str(session.owner_id),
        "slug": session.slug,
    }


def bind_session(session) -> None:
    """Bind session_id/user_id/slug for the rest of this request or task."""
    structlog.contextvars.bind_contextvars(**session_fields(session))


def current_correlation_id() -> str | None:
    ctx = structlog.contextvars.get_contextvars()
    return ctx.get("correlation_id") or ctx.get("request_id")


def _stamp_correlation(headers: dict | None = None, **_kw) -> None:
    """before_task_publish: carry the publisher's correlation id in the message headers."""
    if headers is None:
        return
    cid = current_correlation_id()
    if cid and not headers.get(CORRELATION_HEADER):
        headers[CORRELATION_HEADER] = cid


def _incoming_correlation(task) -> str | None:
    request = getattr(task, "request", None)
    if request is None:
        return None
    value = getattr(request, CORRELATION_HEADER, None)
    if not value:
        value = (getattr(request, "headers", None) or {}).get(CORRELATION_HEADER)
    return str(value)[:128] if value else None


def _bind_task(task_id: str | None = None, task=None, **_kw) -> None:
    """task_prerun: bind the correlation id (the publisher's, else the task id) and task ids.

    A worker process runs one task after another, so the previous task's context is dropped
    first; an eager task runs inside its caller (a request, a test) and keeps the caller's.
    """
    eager = bool(getattr(getattr(task, "request", None), "is_eager", False))
    if not eager:
        structlog.contextvars.clear_contextvars()
    cid = _incoming_correlation(task) or (current_correlation_id() if eager else None) or task_id
    tokens = structlog.contextvars.bind_contextvars(
        correlation_id=cid, task_id=task_id, task_name=getattr(task, "name", None))
    if task_id:
        _tokens[task_id] = tokens


def _unbind_task(task_id: str | None = None, **_kw) -> None:
    """task_postrun: restore the context the task started with."""
    tokens = _tokens.pop(task_id, None) if task_id else None
    if tokens:
        structlog.contextvars.reset_contextvars(**tokens)


def _worker_child_exit(pid: int | None = None, **_kw) -> None:
    """Prometheus multiprocess bookkeeping for a Celery child that exits."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())


def connect() -> None:
    """Hook the handlers to Celery's signals (idempotent: dispatch_uid)."""
    signals.before_task_publish.connect(_stamp_correlation, weak=False,
                                        dispatch_uid="medforge.ops.correlation_publish")
    signals.task_prerun.connect(_bind_task, weak=False, dispatch_uid="medforge.ops.task_prerun")
    signals.task_postrun.connect(_unbind_task, weak=False,
                                 dispatch_uid="medforge.ops.task_postrun")
    signals.worker_process_shutdown.connect(_worker_child_exit, weak=False,
                                            dispatch_uid="medforge.ops.child_exit")
