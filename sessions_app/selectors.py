"""Reads for sessions: what a user sees of their sessions, events and snapshots, and the GPU
overview for the status page and admins."""
from __future__ import annotations

from django.db.models import Count, Prefetch, Q, QuerySet

from medforge.accounts.models import User

from .models import (
    ACTIVE_STATUSES,
    GPU,
    Pack,
    Session,
    SessionEvent,
    Snapshot,
)

_SESSION_RELATED = ("pack", "gpu")


def _with_snapshots(qs: QuerySet[Session]) -> QuerySet[Session]:
    return qs.select_related(*_SESSION_RELATED).prefetch_related(
        Prefetch("snapshots", queryset=Snapshot.objects.filter(deleted_at__isnull=True)
                 .order_by("-created_at")))


def session_current(*, user: User, exposure: str) -> Session | None:
    """The caller's newest active session on this surface, or None."""
    return _with_snapshots(Session.objects.filter(
        owner=user, exposure=exposure, status__in=ACTIVE_STATUSES)).order_by("-created_at").first()


def sessions_for_user(*, user: User, exposure: str, status: str | None = None) -> QuerySet[Session]:
    qs = Session.objects.filter(owner=user, exposure=exposure)
    if status:
        qs = qs.filter(status=status)
    return _with_snapshots(qs)


def session_visible(*, user: User, exposure: str, session_id) -> Session | None:
    """The session if `user` may see it on this surface (owner or admin), else None.

    A session of the other exposure is None too, so its existence is not revealed.
    """
    qs = Session.objects.filter(pk=session_id, exposure=exposure)
    if not user.is_staff:
        qs = qs.filter(owner=user)
    return _with_snapshots(qs).first()


def sessions_for_admin(*, status: str | None = None, exposure: str | None = None,
                       user_id: int | None = None, gpu_index: int | None = None) -> QuerySet[Session]:
    qs = Session.objects.select_related("owner", *_SESSION_RELATED)
    if status:
        qs = qs.filter(status=status)
    if exposure:
        qs = qs.filter(exposure=exposure)
    if user_id is not None:
        qs = qs.filter(owner_id=user_id)
    if gpu_index is not None:
        qs = qs.filter(gpu__index=gpu_index)
    return _with_snapshots(qs)


def session_events(*, session: Session) -> QuerySet[SessionEvent]:
    return SessionEvent.objects.filter(session=session).order_by("id")


def active_session_count(*, user: User | None = None) -> int:
    """Active sessions (starting, running, stopping) across both exposures: the user's, or
    everyone's. The concurrent-session limit, the sessions page and drain count with this."""
    qs = Session.objects.filter(status__in=ACTIVE_STATUSES)
    if user is not None:
        qs = qs.filter(owner=user)
    return qs.count()


def active_session_counts(user_ids) -> dict[int, int]:
    """Active sessions per user across both exposures; 0 for users with none."""
    ids = list(user_ids)
    rows = (Session.objects.filter(owner_id__in=ids, status__in=ACTIVE_STATUSES)
            .values("owner_id").annotate(n=Count("id")))
    counts = {uid: 0 for uid in ids}
    counts.update({row["owner_id"]: row["n"] for row in rows})
    return counts


def snapshots_for_user(*, user: User, exposure: str | None = None) -> QuerySet[Snapshot]:
    qs = Snapshot.objects.filter(owner=user, deleted_at__isnull=True).select_related("session")
    if exposure:
        qs = qs.filter(session__exposure=exposure)
    return qs


def snapshots_for_session(*, session: Session) -> QuerySet[Snapshot]:
    return Snapshot.objects.filter(session=session, deleted_at__isnull=True).order_by("-created_at")


def snapshot_visible(*, user: User, snapshot_id, exposure: str | None = None) -> Snapshot | None:
    qs = Snapshot.objects.filter(pk=snapshot_id, deleted_at__isnull=True).select_related(
        "session", "session__pack", "owner")
    if exposure:
        qs = qs.filter(session__exposure=exposure)
    if not user.is_staff:
        qs = qs.filter(owner=user)
    return qs.first()


def packs_offered(*, exposure: str) -> QuerySet[Pack]:
    return Pack.objects.filter(deprecated=False).filter(
        Q(exposure="both") | Q(exposure=exposure)).order_by("-is_default", "slug")


def gpu_overview() -> dict:
    """Every GPU in exactly one state, the one definition every page and metric uses:
    `in_use` (an active session holds it, even if an operator has disabled it since),
    `free` (enabled, unheld) and `disabled` (set aside by an operator, unheld). The counts
    add up to `total`."""
    gpus = list(GPU.objects.order_by("index"))
    holders = {s.active_gpu_id: s for s in Session.objects.filter(active_gpu__isnull=False)
               .only("id", "slug", "status", "exposure", "owner_id", "active_gpu_id")}
    rows = []
    for gpu in gpus:
        holder = holders.get(gpu.pk)
        state = "in_use" if holder else ("free" if gpu.enabled else "disabled")
        rows.append({
            "index": gpu.index, "uuid": gpu.uuid, "name": gpu.name, "memory_mb": gpu.memory_mb,
            "enabled": gpu.enabled, "note": gpu.note, "state": state,
            "session": None if holder is None else {
                "slug": holder.slug, "status": holder.status, "exposure": holder.exposure,
                "owner_id": holder.owner_id},
        })
    return {
        "total": len(gpus),
        "in_use": sum(1 for r in rows if r["state"] == "in_use"),
        "free": sum(1 for r in rows if r["state"] == "free"),
        "disabled": sum(1 for r in rows if r["state"] == "disabled"),
        "gpus": rows,
    }
