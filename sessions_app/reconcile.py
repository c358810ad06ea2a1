"""Reconcile: make the database and the Docker engine agree (SPEC §4), one pass at a time.

A pass lists the platform's containers once (one Docker API call, by label), reads the active
sessions once, and then corrects each disagreement through the idempotent lifecycle functions.
Nothing here inspects containers one by one. `reconcile_run` adds what the beat needs around a
pass: a lock so passes never overlap, exponential backoff after failures, and the heartbeat
that /healthz reads.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import structlog
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from medforge.ops import heartbeat, metrics
from runtime.containers import ContainerInfo, ContainerRuntimeError, RuntimeUnavailable
from runtime.factory import get_container_runtime

from . import lifecycle
from .models import ACTIVE_STATUSES, Session, SessionStatus

log = structlog.get_logger(__name__)

_LOCK_KEY = "sessions:reconcile:lock"
_BACKOFF_KEY = "sessions:reconcile:backoff"


@dataclass
class ReconcileReport:
    sessions: int = 0
    containers: int = 0
    docker_calls: int = 0
    seconds: float = 0.0
    actions: list[tuple[str, str, str]] = field(default_factory=list)  # (action, slug, result)
    orphans: list[ContainerInfo] = field(default_factory=list)

    def add(self, action: str, slug: str, result: str) -> None:
        self.actions.append((action, slug, result))
        metrics.RECONCILE_ACTIONS.labels(action=action).inc()

    def as_dict(self) -> dict:
        return {
            "sessions": self.sessions, "containers": self.containers,
            "docker_calls": self.docker_calls, "seconds": round(self.seconds, 4),
            "actions": [{"action": a, "slug": s, "result": r} for a, s, r in self.actions],
            "orphans": [{"name": c.name, "id": c.id[:12], "status": c.status,
                         "session_id": c.session_id} for c in self.orphans],
        }


def stop_grace_seconds() -> int:
    """How long a `stopping` session is left to its own stop task before reconcile finishes it."""
    return int(settings.SESSION_STOP_TIMEOUT_SECONDS) + 30


def reconcile_pass(*, now=None) -> ReconcileReport:
    """One pass over every active session and every platform container (see module doc)."""
    runtime = get_container_runtime()
    started = time.perf_counter()
    calls_before = runtime.api_calls
    now = now or timezone.now()
    # Sessions first, containers second: a container that appears in between belongs to a
    # session we did not read (at worst reported as an orphan), never to one we would
    # wrongly declare missing.
    active = list(Session.objects.filter(status__in=ACTIVE_STATUSES).only(
        "id", "slug", "status", "container_id", "upstream", "created_at", "stop_requested_at"))
    containers = runtime.list_managed()
    report = ReconcileReport(containers=len(containers))
    by_session: dict[str, ContainerInfo] = {}
    unlabelled: list[ContainerInfo] = []
    for info in containers:
        if info.session_id:
            by_session[info.session_id] = info
        else:
            unlabelled.append(info)

    start_timeout = timezone.timedelta(seconds=settings.SESSION_START_TIMEOUT_SECONDS)
    stop_grace = timezone.timedelta(seconds=stop_grace_seconds())
    report.sessions = len(active)
    for session in active:
        sid = str(session.id)
        container = by_session.pop(sid, None)
        if session.status == SessionStatus.STARTING:
            if now - session.created_at > start_timeout:
                ok = lifecycle.session_start_failed(
                    session_id=sid, kind="timeout",
                    reason=f"the IDE did not become ready within "
                           f"{settings.SESSION_START_TIMEOUT_SECONDS}s")
                report.add("start_timeout", session.slug, "error" if ok else "moved on")
            elif container is None and session.container_id:
                ok = lifecycle.session_start_failed(
                    session_id=sid, kind="container_missing",
                    reason="the container disappeared while the session was starting")
                report.add("starting_container_missing", session.slug,
                           "error" if ok else "moved on")
        elif session.status == SessionStatus.RUNNING:
            if container is None or container.status in ("exited", "dead"):
                result = lifecycle.session_handle_death(session_id=sid, container=container)
                report.add("running_container_gone", session.slug, result)
            elif container.running:
                fields = {}
                if container.id and container.id != session.container_id:
                    fields["container_id"] = container.id
                if container.upstream and container.upstream != session.upstream:
                    fields["upstream"] = container.upstream
                if fields:
                    lifecycle._transition(
                        sid, expect=(SessionStatus.RUNNING,),
                        event=("reconciled", "Container address normalized by reconcile"),
                        event_data={"fields": sorted(fields)}, **fields)
                    report.add("drift_normalized", session.slug, ",".join(sorted(fields)))
        elif session.status == SessionStatus.STOPPING:
            since = session.stop_requested_at or session.created_at
            if now - since > stop_grace:
                try:
                    result = lifecycle.session_stop_run(session_id=sid)
                except RuntimeUnavailable:
                    raise
                except ContainerRuntimeError as exc:
                    # One container the engine refuses to stop must not hold back every
                    # other session (nor stale the heartbeat): report it, retry next pass.
                    log.warning("reconcile.stop_failed", session_id=sid, slug=session.slug,
                                error=str(exc))
                    report.add("stop_failed", session.slug, str(exc)[:200])
                    continue
                report.add("stop_finished", session.slug, result)

    report.orphans = list(by_session.values()) + unlabelled
    for orphan in report.orphans:
        metrics.RECONCILE_ACTIONS.labels(action="orphan_reported").inc()
        log.warning("reconcile.orphan_container", container=orphan.name, id=orphan.id[:12],
                    session_id=orphan.session_id, status=orphan.status)
    report.docker_calls = runtime.api_calls - calls_before
    report.seconds = time.perf_counter() - started
    return report


def reconcile_run(*, force: bool = False) -> ReconcileReport | None:
    """The beat's entry point: one pass unless another is running or backoff says wait.

    On success the heartbeat is recorded and backoff reset; on failure the wait before the
    next pass doubles from the poll interval up to SESSION_POLL_BACKOFF_MAX_SECONDS. `force`
    ignores backoff (manage.py reconcile, worker start). Returns None when skipped.
    """
    poll = int(settings.SESSION_POLL_INTERVAL_SECONDS)
    state = cache.get(_BACKOFF_KEY) or {"failures": 0, "next_at": 0.0}
    if not force and time.time() < state["next_at"]:
        return None
    lock_ttl = max(60, 3 * poll)
    if not cache.add(_LOCK_KEY, "1", timeout=lock_ttl):
        return None
    try:
        with metrics.RECONCILE_DURATION.time():
            report = reconcile_pass()
    except Exception as exc:
        failures = state["failures"] + 1
        wait = min(poll * (2 ** failures), int(settings.SESSION_POLL_BACKOFF_MAX_SECONDS))
        cache.set(_BACKOFF_KEY, {"failures": failures, "next_at": time.time() + wait}, None)
        metrics.RECONCILE_FAILURES.inc()
        log.error("reconcile.failed", error=str(exc), failures=failures, backoff_s=wait)
        raise
    finally:
        cache.delete(_LOCK_KEY)
    cache.delete(_BACKOFF_KEY)
    heartbeat.beat(heartbeat.RECONCILE, sessions=report.sessions, containers=report.containers,
                   actions=len(report.actions), orphans=len(report.orphans),
                   seconds=round(report.seconds, 4))
    if report.actions or report.orphans:
        log.info("reconcile.pass", **{k: v for k, v in report.as_dict().items()
                                      if k != "orphans"}, orphans=len(report.orphans))
    return report


def backoff_state() -> dict:
    """The current backoff (failures so far, unix time of the next allowed pass)."""
    return cache.get(_BACKOFF_KEY) or {"failures": 0, "next_at": 0.0}


def cleanup_orphans(*, force: bool = False) -> list[ContainerInfo]:
    """Containers labelled as the platform's with no active session; removed only if `force`.

    A dry run by default, so an operator sees what would go before anything does.
    """
    runtime = get_container_runtime()
    containers = runtime.list_managed()
    active_ids = {str(pk) for pk in Session.objects.filter(status__in=ACTIVE_STATUSES)
                  .values_list("id", flat=True)}
    orphans = [c for c in containers if c.session_id not in active_ids]
    if force:
        for orphan in orphans:
            runtime.remove_by_name(orphan.name or orphan.id)
            metrics.RECONCILE_ACTIONS.labels(action="orphan_removed").inc()
            log.warning("cleanup.orphan_removed", container=orphan.name, id=orphan.id[:12],
                        session_id=orphan.session_id)
    return orphans
