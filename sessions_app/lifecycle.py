"""The container side of a session's life: start, stop, death. Called by the Celery tasks and
by reconcile; each function takes a session id and is safe to run twice, late, or after a crash.

Every state change goes through `_transition`, a compare-and-set under the row lock: it
re-reads the row, applies the change only when the status is still one the caller expects,
appends the timeline event and notifies the forward-auth cache on commit. Docker and workspace
calls are made outside any transaction, so a slow engine never holds a row lock.
"""
from __future__ import annotations

import os
import re
import time
from typing import Any

import structlog
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from medforge.ops import metrics
from runtime.containers import (
    ContainerInfo,
    ContainerRuntimeError,
    RuntimeUnavailable,
    SessionContainerSpec,
)
from runtime.factory import get_container_runtime, get_workspace_store
from runtime.workspaces import WorkspaceError

from .hooks import session_changed_on_commit
from .models import (
    TERMINAL_STATUSES,
    Session,
    SessionEvent,
    SessionStatus,
    Snapshot,
    SnapshotKind,
)

log = structlog.get_logger(__name__)

ERROR_MESSAGE_MAX = 4000
# Network addresses (the IDE's upstream, the engine's URL) inside a runtime or workspace
# error: the platform's business, never shown to the session's owner.
_ADDRESS_RE = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+"
                         r"|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"
                         r"|\[[0-9a-fA-F:.]*:[0-9a-fA-F:.]*\](?::\d+)?")


def _for_owner(reason: str) -> str:
    """`reason` as the owner may read it (error message, timeline): addresses masked.
    The log keeps the full reason for operators."""
    return _ADDRESS_RE.sub("<address>", reason)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _transition(session_id: str, *, expect: tuple[str, ...], to: str | None = None,
                event: tuple[str, str] | None = None, event_data: dict | None = None,
                earlier_events: tuple[tuple[str, str, Any], ...] = (),
                **fields: Any) -> Session | None:
    """Compare-and-set: apply `to`/`fields` only if the row's status is in `expect`.

    Returns the updated session, or None when the row is gone or moved on (a newer state
    always wins). Entering a terminal state frees the GPU (`active_gpu` NULL) and stamps
    `stopped_at`.
    """
    with transaction.atomic():
        session = Session.objects.select_for_update().filter(pk=session_id).first()
        if session is None or session.status not in expect:
            return None
        changed = set(fields)
        for name, value in fields.items():
            setattr(session, name, value)
        if to is not None and to != session.status:
            session.status = to
            changed.add("status")
            if to in TERMINAL_STATUSES:
                session.active_gpu = None
                session.stopped_at = session.stopped_at or timezone.now()
                changed |= {"active_gpu", "stopped_at"}
        if changed:
            session.save(update_fields=[*sorted(changed), "updated_at"])
        # Steps that happened before this write (kind, message, when), recorded with it so
        # the start path commits once instead of once per step.
        for kind, message, at in earlier_events:
            SessionEvent.objects.create(session=session, kind=kind, message=message[:500], at=at)
        if event is not None:
            SessionEvent.objects.create(session=session, kind=event[0], message=event[1][:500],
                                        data=event_data or {})
        if changed & {"status", "upstream", "container_id"}:
            session_changed_on_commit(session.slug)
    return session


def _remove_container(session: Session) -> bool:
    """Remove the session's container by name (covers a container whose id was never saved)."""
    try:
        return get_container_runtime().remove_by_name(session.container_name)
    except ContainerRuntimeError as exc:
        log.warning("session.container_remove_failed", session_id=str(session.id),
                    slug=session.slug, error=str(exc))
        return False


def _spec(session: Session, workspace_path: str) -> SessionContainerSpec:
    training = getattr(settings, "TRAINING_DATA_ROOT", None)
    return SessionContainerSpec(
        session_id=str(session.id),
        slug=session.slug,
        user_id=session.owner_id,
        exposure=session.exposure,
        image=session.pack.image,
        gpu_index=session.gpu.index,
        gpu_uuid=session.gpu.uuid,
        gpu_id=session.gpu.index,
        workspace_host_path=workspace_path,
        # Only the training data root, read-only, and only where it exists; never the
        # public-eval or holdout roots.
        training_data_path=training if training and os.path.isdir(training) else None,
    )


# --------------------------------------------------------------------------- start


def session_start_run(*, session_id: str) -> str:
    """Workspace → container → wait until it runs and its IDE answers HTTP → `running`.

    A session that is no longer `starting` is left alone; if it moved on while we worked
    (a stop arrived), the container we made is removed. Any failure removes the container,
    marks `error` with the reason and frees the GPU. RuntimeUnavailable (engine not answering)
    is raised to the task, which retries it.
    """
    session = (Session.objects.select_related("pack", "gpu", "restored_from")
               .filter(pk=session_id).first())
    if session is None:
        return "missing"
    if session.status != SessionStatus.STARTING:
        return f"skipped ({session.status})"
    runtime = get_container_runtime()
    store = get_workspace_store()
    try:
        if session.restored_from_id:
            workspace = store.restore(session.restored_from.full_name, session.owner_id,
                                      str(session.id))
            what = f"Workspace restored from snapshot {session.restored_from.name}"
        else:
            workspace = store.create(session.owner_id, str(session.id))
            what = "Workspace ready"
        workspace_at = timezone.now()
        info = runtime.run(_spec(session, workspace.host_path))
        # One write for both steps (the IDE boots meanwhile). Should the worker die before it,
        # reconcile errors the start and removes the container by name; the workspace is
        # deterministic per session, so nothing the user made is lost (the IDE never served).
        if _transition(session_id, expect=(SessionStatus.STARTING,),
                       earlier_events=(("workspace_ready", what, workspace_at),),
                       event=("container_started", "Container started; waiting for the IDE"),
                       event_data={"container_id": info.id[:12]}, container_id=info.id,
                       workspace_id=workspace.id, workspace_path=workspace.host_path) is None:
            _remove_container(session)
            return "abandoned"
        elapsed = (timezone.now() - session.created_at).total_seconds()
        remaining = max(5.0, settings.SESSION_START_TIMEOUT_SECONDS - elapsed)
        ready = runtime.wait_ready(info.id, info.upstream, remaining)
    except RuntimeUnavailable:
        raise
    except (ContainerRuntimeError, WorkspaceError, ValueError, OSError) as exc:
        session_start_failed(session_id=session_id, reason=str(exc), kind=type(exc).__name__)
        return "error"
    now = timezone.now()
    done = _transition(session_id, expect=(SessionStatus.STARTING,), to=SessionStatus.RUNNING,
                       event=("running", "The IDE is answering; the session is running"),
                       container_id=ready.id, upstream=ready.upstream or "", started_at=now,
                       error_message="")
    if done is None:
        _remove_container(session)
        return "abandoned"
    metrics.SESSION_STARTS.inc()
    metrics.SESSION_START_DURATION.observe((now - session.created_at).total_seconds())
    log.info("session.running", session_id=session_id, slug=session.slug,
             user_id=session.owner_id, seconds=round((now - session.created_at).total_seconds(), 3))
    return "running"


def session_start_failed(*, session_id: str, reason: str, kind: str = "error") -> bool:
    """Remove whatever the start left behind and mark `error` (only from `starting`)."""
    session = Session.objects.filter(pk=session_id).first()
    if session is None or session.status != SessionStatus.STARTING:
        return False
    _remove_container(session)
    shown = _for_owner(reason)
    done = _transition(session_id, expect=(SessionStatus.STARTING,), to=SessionStatus.ERROR,
                       event=("error", f"Start failed: {shown.splitlines()[0] if shown else kind}"),
                       error_message=f"Start failed: {shown}"[:ERROR_MESSAGE_MAX])
    if done is not None:
        metrics.SESSION_STARTS_FAILED.labels(reason=kind).inc()
        log.warning("session.start_failed", session_id=session_id, slug=session.slug,
                    user_id=session.owner_id, reason=reason[:500])
    return done is not None


# --------------------------------------------------------------------------- snapshots


def _snapshot(session: Session, kind: str) -> Snapshot:
    """Take (or find) the session's snapshot of `kind`; idempotent across crashes.

    A row already recorded is reused; a snapshot taken by a worker that died before writing
    the row is found in the backend and recorded; otherwise `<workspace>@<kind>-<unix ms>`.
    """
    existing = Snapshot.objects.filter(session=session, kind=kind, deleted_at__isnull=True).first()
    if existing is not None:
        return existing
    store = get_workspace_store()
    prefix = f"{kind}-"
    found = [s for s in store.list_snapshots(session.workspace_id) if s.name.startswith(prefix)]
    info = found[-1] if found else store.snapshot(session.workspace_id, f"{prefix}{_now_ms()}")
    snapshot, _ = Snapshot.objects.get_or_create(
        full_name=info.full_name,
        defaults={"session": session, "owner_id": session.owner_id, "name": info.name,
                  "kind": kind, "created_at": info.created_at, "size_bytes": info.size_bytes},
    )
    return snapshot


# --------------------------------------------------------------------------- stop


def session_stop_run(*, session_id: str) -> str:
    """Stop and remove the container, snapshot `@stop-<unix ms>`, then `stopped`.

    Only acts on a `stopping` session. A container already gone is fine; a snapshot failure
    marks `error` with the reason. Safe to repeat: the second run finds the container gone
    and the snapshot recorded.
    """
    session = Session.objects.filter(pk=session_id).first()
    if session is None:
        return "missing"
    if session.status != SessionStatus.STOPPING:
        return f"skipped ({session.status})"
    removed = get_container_runtime().stop_and_remove(
        session.container_name, timeout_s=settings.SESSION_STOP_TIMEOUT_SECONDS)
    if _transition(session_id, expect=(SessionStatus.STOPPING,),
                   event=("container_removed", ("Container stopped and removed" if removed
                                                else "Container was already gone"))) is None:
        return "skipped (moved on)"
    if not session.workspace_id:
        done = _transition(session_id, expect=(SessionStatus.STOPPING,), to=SessionStatus.STOPPED,
                           event=("stopped",
                                  "Stopped before a workspace existed; nothing to snapshot"))
        _count_stop(done, "stopped")
        return "stopped" if done else "skipped (moved on)"
    try:
        snapshot = _snapshot(session, SnapshotKind.STOP)
    except (WorkspaceError, ValueError, OSError) as exc:
        log.warning("session.snapshot_failed", session_id=session_id, slug=session.slug,
                    user_id=session.owner_id, error=str(exc))
        reason = f"Snapshot failed: {_for_owner(str(exc))}"
        done = _transition(session_id, expect=(SessionStatus.STOPPING,), to=SessionStatus.ERROR,
                           event=("error", reason), error_message=reason[:ERROR_MESSAGE_MAX])
        _count_stop(done, "snapshot_failed")
        return "error"
    done = _transition(session_id, expect=(SessionStatus.STOPPING,), to=SessionStatus.STOPPED,
                       event=("stopped", f"Stopped; workspace saved as snapshot {snapshot.name}"),
                       event_data={"snapshot": snapshot.name})
    _count_stop(done, "stopped")
    if done is not None:
        log.info("session.stopped", session_id=session_id, slug=session.slug,
                 user_id=session.owner_id, snapshot=snapshot.full_name)
    return "stopped" if done else "skipped (moved on)"


def _count_stop(done: Session | None, outcome: str) -> None:
    if done is not None:
        metrics.SESSION_STOPS.labels(outcome=outcome).inc()


# --------------------------------------------------------------------------- death


def session_handle_death(*, session_id: str, container: ContainerInfo | None) -> str:
    """A `running` session whose container exited or vanished: snapshot `@death-<ms>`, `error`."""
    session = Session.objects.filter(pk=session_id).first()
    if session is None or session.status != SessionStatus.RUNNING:
        return "skipped"
    if container is None:
        reason = "The IDE container disappeared"
    else:
        reason = f"The IDE container exited (status {container.status}, code {container.exit_code})"
    _remove_container(session)
    note = ""
    if session.workspace_id:
        try:
            snapshot = _snapshot(session, SnapshotKind.DEATH)
            note = f"; workspace saved as snapshot {snapshot.name}"
        except (WorkspaceError, ValueError, OSError) as exc:
            log.warning("session.snapshot_failed", session_id=session_id, slug=session.slug,
                        user_id=session.owner_id, error=str(exc))
            note = f"; the snapshot failed too: {_for_owner(str(exc))}"
    done = _transition(session_id, expect=(SessionStatus.RUNNING,), to=SessionStatus.ERROR,
                       event=("error", reason + note),
                       error_message=(reason + note)[:ERROR_MESSAGE_MAX])
    _count_stop(done, "died")
    return "error" if done else "skipped"
