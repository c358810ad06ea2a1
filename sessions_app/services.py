"""Writes for sessions: allocation, stop intent, restore, idle activity, GPUs and packs.

Each service keeps its invariant in one transaction and queues side effects (Celery tasks,
forward-auth cache invalidation) with `transaction.on_commit`. The container and workspace
work itself lives in `lifecycle.py`, run by the tasks.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import structlog
from django.conf import settings
from django.db import IntegrityError, OperationalError, transaction
from django.db.models import Q
from django.utils import timezone

from medforge.accounts.models import User
from medforge.accounts.services import audit_record
from medforge.api.problems import Problem
from medforge.core.exposure import may_use
from medforge.ops.flags import maintenance_on
from runtime.factory import get_gpu_inventory

from . import dispatch, selectors
from .hooks import session_changed_on_commit
from .models import (
    GPU,
    TERMINAL_STATUSES,
    Exposure,
    Pack,
    PackExposure,
    Session,
    SessionEvent,
    SessionStatus,
    Snapshot,
)

log = structlog.get_logger(__name__)

LOCAL_PACK_SLUG = "local-default"
_IMAGE_ID_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
# MariaDB error numbers worth a retry of the whole allocation: lock wait timeout, deadlock.
_RETRYABLE_DB_ERRORS = {1205, 1213}


# --------------------------------------------------------------------------- events


def session_event_add(*, session: Session, kind: str, message: str = "", **data: Any) -> SessionEvent:
    """Append one step to the session's timeline (what the UI shows as start progress)."""
    return SessionEvent.objects.create(session=session, kind=kind, message=message[:500],
                                       data=data)


# --------------------------------------------------------------------------- packs


def _resolve_pack(pack: Pack | int | str | None, exposure: str) -> Pack:
    if pack is None:
        candidates = Pack.objects.filter(deprecated=False).filter(
            Q(exposure=PackExposure.BOTH) | Q(exposure=exposure))
        chosen = candidates.order_by("-is_default", "slug").first()
        if chosen is None:
            raise Problem("pack_not_found", f"No pack is offered on the {exposure} surface; "
                                            "an operator must register one.")
        return chosen
    if not isinstance(pack, Pack):
        key = str(pack)
        # isdigit() alone admits "²" and other non-ASCII digits that int() refuses.
        found = (Pack.objects.filter(pk=int(key)).first()
                 if key.isascii() and key.isdigit() else None)
        found = found or Pack.objects.filter(slug=key).first()
        if found is None:
            raise Problem("pack_not_found", f"There is no pack {key!r}.")
        pack = found
    if pack.deprecated:
        raise Problem("pack_deprecated", f"Pack {pack.slug!r} is deprecated; choose another.")
    if not pack.offered_on(exposure):
        raise Problem("pack_exposure_mismatch",
                      f"Pack {pack.slug!r} is offered on the {pack.exposure} surface only.")
    return pack


def pack_register_local(*, image_id: str) -> Pack:
    """Register (or re-point) the locally built pack `local-default` at `image_id`.

    Idempotent: the same id twice changes nothing. It becomes the one default pack, offered
    on both surfaces; the image is pinned by its content-addressed id.
    """
    image_id = (image_id or "").strip()
    if not _IMAGE_ID_RE.match(image_id):
        raise ValueError(f"{image_id!r} is not an image id of the form sha256:<64 hex>")
    with transaction.atomic():
        pack, _ = Pack.objects.select_for_update().get_or_create(
            slug=LOCAL_PACK_SLUG,
            defaults={"name": "Local stand-in IDE", "image": image_id,
                      "exposure": PackExposure.BOTH, "is_default": True,
                      "description": "Built by deploy/packs/local/build.sh without a registry."},
        )
        changed = {}
        for field, value in (("image", image_id), ("exposure", PackExposure.BOTH),
                             ("is_default", True), ("deprecated", False)):
            if getattr(pack, field) != value:
                setattr(pack, field, value)
                changed[field] = value
        if changed:
            pack.save(update_fields=list(changed))
        Pack.objects.filter(is_default=True).exclude(pk=pack.pk).update(is_default=False)
    return pack


# --------------------------------------------------------------------------- allocation


def _free_gpu() -> GPU | None:
    """The lowest-numbered enabled GPU with no active session, row-locked.

    SKIP LOCKED passes over GPUs that a concurrent allocation is claiming right now, so 200
    simultaneous creates do not queue behind each other. The set of busy GPUs is read without
    locks; a GPU freed or taken in between is caught by the unique `active_gpu` index.
    """
    busy = list(Session.objects.filter(active_gpu__isnull=False)
                .values_list("active_gpu_id", flat=True))
    return (GPU.objects.select_for_update(skip_locked=True)
            .filter(enabled=True).exclude(pk__in=busy).order_by("index").first())


def _allocate(*, user: User, exposure: str, pack: Pack, restored_from: Snapshot | None) -> Session:
    attempts = max(3, GPU.objects.count() + 2)
    for attempt in range(attempts):
        try:
            with transaction.atomic():
                locked = User.objects.select_for_update().get(pk=user.pk)
                # Retention destroys snapshots under this same lock: re-check here so a restore
                # racing a prune is refused instead of failing later in the start task.
                if restored_from is not None and not Snapshot.objects.filter(
                        pk=restored_from.pk, deleted_at__isnull=True).exists():
                    raise Problem("snapshot_not_found", "That snapshot was pruned by retention.")
                active = selectors.active_session_count(user=locked)
                limit = locked.max_concurrent_sessions
                if active >= limit:
                    raise Problem(
                        "concurrent_session_limit",
                        f"You have {active} active session(s), your limit is {limit}; stop one "
                        "first.", limit=limit, active=active)
                gpu = _free_gpu()
                if gpu is None:
                    raise Problem("no_gpus_available",
                                  "Every GPU is in use or disabled; try again later.")
                session = Session.objects.create(
                    owner=locked, exposure=exposure, pack=pack, gpu=gpu, active_gpu=gpu,
                    status=SessionStatus.STARTING, restored_from=restored_from)
                message = f"Session requested on GPU {gpu.index} with pack {pack.slug}"
                if restored_from is not None:
                    message += f", restoring snapshot {restored_from.name}"
                session_event_add(session=session, kind="created", message=message,
                                  gpu=gpu.index, pack=pack.slug)
                session_changed_on_commit(session.slug)
                session_id = str(session.id)
                transaction.on_commit(lambda sid=session_id: dispatch.enqueue_start(sid))
            log.info("session.created", session_id=session_id, slug=session.slug,
                     user_id=user.pk, gpu=gpu.index, exposure=exposure)
            return session
        except IntegrityError:
            # Another allocation took the same GPU (or slug) between our read and insert.
            continue
        except OperationalError as exc:
            if exc.args and exc.args[0] in _RETRYABLE_DB_ERRORS and attempt + 1 < attempts:
                continue
            raise
    raise Problem("no_gpus_available", "Every GPU is in use or disabled; try again later.")


def _check_may_start(*, user: User, exposure: str) -> None:
    """The refusals shared by every way of starting a session (new or restored)."""
    if exposure not in Exposure.values:
        raise ValueError(f"exposure must be one of {Exposure.values}")
    if maintenance_on():
        raise Problem("maintenance", "The platform is draining for maintenance; new sessions "
                                     "are paused. Running sessions are not affected.")
    if not may_use(user, exposure):
        raise Problem("internal_access_required",
                      "Internal sessions need the internal entitlement.")


def session_create(*, user: User, exposure: str, pack: Pack | int | str | None = None) -> Session:
    """Allocate a GPU and create a `starting` session; the start task is queued on commit.

    Invariants: in one transaction with the user's row locked, the user's active sessions
    across both exposures stay within `max_concurrent_sessions`; the GPU is the lowest-numbered
    enabled one without an active session, and the database's unique `active_gpu` index makes
    a double booking impossible whatever the concurrency. Nothing is written on refusal.
    """
    _check_may_start(user=user, exposure=exposure)
    chosen = _resolve_pack(pack, exposure)
    return _allocate(user=user, exposure=exposure, pack=chosen, restored_from=None)


def session_restore(*, snapshot: Snapshot, by: User, exposure: str | None = None) -> Session:
    """A new session for the snapshot's owner whose workspace starts as a copy of `snapshot`.

    Same rules as `session_create` (limit, GPU, maintenance, entitlement); only the owner or
    an admin may restore, and a pruned snapshot cannot be restored.
    """
    if not (by.is_staff or by.pk == snapshot.owner_id) or snapshot.deleted_at is not None:
        raise Problem("snapshot_not_found", "No such snapshot of yours.")
    source = snapshot.session
    exposure = exposure or source.exposure
    owner = snapshot.owner
    _check_may_start(user=owner, exposure=exposure)
    pack = source.pack
    if pack.deprecated or not pack.offered_on(exposure):
        pack = _resolve_pack(None, exposure)
    session = _allocate(user=owner, exposure=exposure, pack=pack, restored_from=snapshot)
    if by.pk != owner.pk:
        audit_record(actor=by, action="session.restore", target=session,
                     data={"snapshot": snapshot.full_name, "owner": owner.pk})
    return session


# --------------------------------------------------------------------------- stop


def session_request_stop(*, session: Session, by: User | str) -> tuple[Session, str]:
    """Record the intent to stop (`stopping`) and queue the stop task; returns (session, message).

    Idempotent: a session already stopping is left as it is, a terminal one is never touched
    ("already terminal"). The container work happens in the stop task, never in the request.
    """
    actor = by if isinstance(by, User) else None
    who = (by.handle if actor else str(by)) or "system"
    with transaction.atomic():
        locked = Session.objects.select_for_update().get(pk=session.pk)
        if locked.status in TERMINAL_STATUSES:
            return locked, "already terminal"
        if locked.status == SessionStatus.STOPPING:
            return locked, "already stopping"
        previous = locked.status
        locked.status = SessionStatus.STOPPING
        locked.stop_requested_at = timezone.now()
        locked.save(update_fields=["status", "stop_requested_at", "updated_at"])
        session_event_add(session=locked, kind="stop_requested",
                          message=f"Stop requested by {who} (was {previous})", by=who)
        if actor is not None and actor.pk != locked.owner_id:
            audit_record(actor=actor, action="session.stop", target=locked,
                         data={"slug": locked.slug, "owner": locked.owner_id})
        session_changed_on_commit(locked.slug)
        session_id = str(locked.id)
        transaction.on_commit(lambda: dispatch.enqueue_stop(session_id))
    log.info("session.stop_requested", session_id=session_id, slug=locked.slug, by=who)
    return locked, "stopping"


# --------------------------------------------------------------------------- activity


def session_record_activity(*, seen: dict[str, datetime]) -> int:
    """Move `last_activity_at` forward for running sessions seen by the proxy (slug → time).

    Never moves it backwards, so out-of-order batches are harmless. Returns rows updated.
    """
    updated = 0
    with transaction.atomic():
        for slug, at in seen.items():
            updated += Session.objects.filter(slug=slug, status=SessionStatus.RUNNING).filter(
                Q(last_activity_at__isnull=True) | Q(last_activity_at__lt=at)
            ).update(last_activity_at=at)
    return updated


def sessions_cull_idle(*, now: datetime | None = None) -> list[str]:
    """Request a stop for every running session idle longer than SESSION_IDLE_TIMEOUT_SECONDS.

    Idle means no proxied IDE request since then (or since it started, if none ever came).
    0 disables culling. Returns the slugs asked to stop.
    """
    timeout = int(settings.SESSION_IDLE_TIMEOUT_SECONDS or 0)
    if timeout <= 0:
        return []
    now = now or timezone.now()
    cutoff = now - timezone.timedelta(seconds=timeout)
    idle = Session.objects.filter(status=SessionStatus.RUNNING).filter(
        Q(last_activity_at__lt=cutoff)
        | Q(last_activity_at__isnull=True, started_at__lt=cutoff)
    )
    culled = []
    for session in idle:
        _, message = session_request_stop(session=session, by=f"idle culler ({timeout}s idle)")
        if message == "stopping":
            culled.append(session.slug)
    return culled


# --------------------------------------------------------------------------- GPUs


def gpu_set_enabled(*, gpu: GPU, enabled: bool, by: User | None, reason: str = "") -> GPU:
    """Enable or disable a GPU for new allocations (audited); running sessions are untouched."""
    with transaction.atomic():
        locked = GPU.objects.select_for_update().get(pk=gpu.pk)
        before = locked.enabled
        locked.enabled = enabled
        locked.note = reason[:200]
        locked.save(update_fields=["enabled", "note"])
        audit_record(actor=by, action="gpu.enable" if enabled else "gpu.disable", target=locked,
                     data={"index": locked.index, "reason": reason, "was_enabled": before})
    return locked


def gpus_sync(*, inventory=None) -> dict[str, list[int]]:
    """Bring the GPU table in line with discovery (NVML, nvidia-smi or the static list).

    New GPUs are added enabled; known ones get their uuid/name/memory refreshed and
    `last_seen_at`; GPUs no longer discovered are disabled with a note (never deleted: old
    sessions refer to them). An operator's own disable is kept.
    """
    found = (inventory or get_gpu_inventory()).discover()
    now = timezone.now()
    report: dict[str, list[int]] = {"added": [], "updated": [], "missing": []}
    with transaction.atomic():
        seen = set()
        for info in found:
            seen.add(info.index)
            gpu = GPU.objects.select_for_update().filter(index=info.index).first()
            fields = {"uuid": info.uuid, "name": info.name or "", "memory_mb": info.memory_mb or 0,
                      "last_seen_at": now}
            if gpu is None:
                # A uuid seen at another index (re-cabled host) moves with its device.
                GPU.objects.filter(uuid=info.uuid).update(uuid=f"stale-{info.uuid}"[:64])
                GPU.objects.create(index=info.index, **fields)
                report["added"].append(info.index)
            else:
                if gpu.uuid != info.uuid:
                    GPU.objects.filter(uuid=info.uuid).exclude(pk=gpu.pk).update(
                        uuid=f"stale-{info.uuid}"[:64])
                for key, value in fields.items():
                    setattr(gpu, key, value)
                if gpu.note == "not found by discovery":
                    gpu.enabled, gpu.note = True, ""
                gpu.save()
                report["updated"].append(info.index)
        for gpu in GPU.objects.select_for_update().exclude(index__in=seen):
            if gpu.enabled:
                gpu.enabled, gpu.note = False, "not found by discovery"
                gpu.save(update_fields=["enabled", "note"])
            report["missing"].append(gpu.index)
    return report
