"""Celery tasks for the session lifecycle: thin wrappers over lifecycle.py and reconcile.py.

Each takes an id, is idempotent (the lifecycle functions compare-and-set on the row), acks
late so a task whose worker died is redelivered, and retries only when the Docker engine did
not answer. Reconcile also runs once when a worker starts.
"""
from __future__ import annotations

import structlog
from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from runtime.containers import RuntimeUnavailable

from . import lifecycle, services
from . import reconcile as reconcile_mod

log = structlog.get_logger(__name__)

_START_LIMIT = int(settings.SESSION_START_TIMEOUT_SECONDS) + 60
_STOP_LIMIT = int(settings.SESSION_STOP_TIMEOUT_SECONDS) + 600  # the snapshot may copy a lot
_RETRIES = 4


def _bind(session_id: str) -> None:
    structlog.contextvars.bind_contextvars(session_id=str(session_id))


@shared_task(bind=True, acks_late=True, max_retries=_RETRIES, soft_time_limit=_START_LIMIT,
             time_limit=_START_LIMIT + 30)
def start_session(self, session_id: str) -> str:
    _bind(session_id)
    try:
        return lifecycle.session_start_run(session_id=session_id)
    except RuntimeUnavailable as exc:
        if self.request.retries >= _RETRIES:
            lifecycle.session_start_failed(session_id=session_id, reason=str(exc),
                                           kind="docker_unavailable")
            return "error"
        raise self.retry(exc=exc, countdown=min(30, 2 ** self.request.retries)) from exc


@shared_task(bind=True, acks_late=True, max_retries=_RETRIES, soft_time_limit=_STOP_LIMIT,
             time_limit=_STOP_LIMIT + 30)
def stop_session(self, session_id: str) -> str:
    _bind(session_id)
    try:
        return lifecycle.session_stop_run(session_id=session_id)
    except RuntimeUnavailable as exc:
        if self.request.retries >= _RETRIES:
            # Reconcile finishes the stop once the engine answers again.
            return "deferred to reconcile"
        raise self.retry(exc=exc, countdown=min(30, 2 ** self.request.retries)) from exc


@shared_task(acks_late=True, soft_time_limit=max(60, 2 * settings.SESSION_POLL_INTERVAL_SECONDS),
             time_limit=max(90, 3 * settings.SESSION_POLL_INTERVAL_SECONDS), ignore_result=True)
def reconcile(force: bool = False) -> dict | None:
    """One reconcile pass (beat every SESSION_POLL_INTERVAL_SECONDS; skipped while backing off)."""
    try:
        report = reconcile_mod.reconcile_run(force=force)
    except Exception:  # noqa: BLE001 — already logged and counted; backoff decides the next try
        return None
    return None if report is None else report.as_dict()


@shared_task(acks_late=True, soft_time_limit=120, time_limit=150, ignore_result=True)
def cull_idle() -> list[str]:
    """Stop sessions idle longer than SESSION_IDLE_TIMEOUT_SECONDS (0 = off)."""
    return services.sessions_cull_idle()


@worker_ready.connect
def _reconcile_at_worker_start(sender=None, **kwargs) -> None:
    # A worker that starts after a crash first repairs what the crash left behind.
    if settings.RECONCILE_ENABLED:
        reconcile.apply_async(kwargs={"force": True})
