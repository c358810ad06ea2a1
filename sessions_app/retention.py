"""Snapshot retention: which snapshots fall outside the policy, and pruning them.

Policy (SPEC §4): per user, keep the newest `keep_per_user` snapshots and every snapshot
younger than `keep_days` days; everything else may go. A snapshot that an active session is
being restored from is always kept. Pruning destroys the snapshot in the workspace store and
then marks `Snapshot.deleted_at`, so a crash in between is repaired by the next run (the
store answers "already gone" and the row is marked).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from django.db import transaction
from django.utils import timezone

from medforge.accounts.models import User
from medforge.ops import metrics
from runtime.factory import get_workspace_store
from sessions_app.models import ACTIVE_STATUSES, Session, Snapshot

log = structlog.get_logger(__name__)


@dataclass
class PruneResult:
    candidates: list = field(default_factory=list)   # Snapshot rows outside the policy
    removed: list = field(default_factory=list)      # destroyed and marked deleted
    failed: list = field(default_factory=list)       # (snapshot, reason): kept, retried next run


def snapshots_outside_policy(*, keep_per_user: int, keep_days: int,
                             now: datetime | None = None, user_id: int | None = None) -> list:
    """Live snapshots (not yet deleted) that the retention policy no longer protects,
    oldest first. `keep_per_user` < 0 or `keep_days` < 0 is refused."""
    if keep_per_user < 0 or keep_days < 0:
        raise ValueError("keep_per_user and keep_days must be 0 or more")
    now = now or timezone.now()
    cutoff = now - timedelta(days=keep_days)
    in_use = set(
        Session.objects.filter(status__in=list(ACTIVE_STATUSES), restored_from__isnull=False)
        .values_list("restored_from_id", flat=True)
    )
    live = Snapshot.objects.filter(deleted_at__isnull=True)
    if user_id is not None:
        live = live.filter(owner_id=user_id)
    doomed = []
    seen: dict[int, int] = {}
    # Newest first per owner; the id breaks ties between snapshots of the same instant.
    for snap in live.select_related("session").order_by("owner_id", "-created_at", "-id"):
        rank = seen.get(snap.owner_id, 0)
        seen[snap.owner_id] = rank + 1
        if rank < keep_per_user or snap.created_at >= cutoff or snap.pk in in_use:
            continue
        doomed.append(snap)
    doomed.sort(key=lambda s: (s.created_at, str(s.pk)))
    return doomed


def snapshots_prune(*, keep_per_user: int, keep_days: int, force: bool = False,
                    now: datetime | None = None, user_id: int | None = None,
                    store=None) -> PruneResult:
    """List (dry run) or destroy the snapshots outside the retention policy.

    Invariant: a row is marked deleted only after the store no longer holds the snapshot; a
    snapshot the store refuses to destroy (e.g. a ZFS clone still depends on it) stays live
    and is reported in `failed`.
    """
    result = PruneResult(candidates=snapshots_outside_policy(
        keep_per_user=keep_per_user, keep_days=keep_days, now=now, user_id=user_id))
    if not force:
        return result
    if store is None:
        store = get_workspace_store()
    for snap in list(result.candidates):
        with transaction.atomic():
            # The candidates were listed before this loop; a restore may have begun since.
            # Holding the owner's row serialises this check with session allocation, which
            # takes the same lock before it inserts a session restoring from a snapshot.
            User.objects.select_for_update().filter(pk=snap.owner_id).first()
            if Session.objects.filter(status__in=list(ACTIVE_STATUSES),
                                      restored_from_id=snap.pk).exists():
                result.candidates.remove(snap)
                continue
            try:
                store.destroy_snapshot(snap.full_name)  # False = already gone: still mark it
            except Exception as exc:  # noqa: BLE001 - reported per snapshot; the run goes on
                reason = f"{exc.__class__.__name__}: {exc}"[:300]
                log.warning("snapshot.prune_failed", snapshot=snap.full_name,
                            user_id=str(snap.owner_id), session_id=str(snap.session_id),
                            reason=reason)
                result.failed.append((snap, reason))
                continue
            marked = Snapshot.objects.filter(pk=snap.pk, deleted_at__isnull=True).update(
                deleted_at=timezone.now())
        if marked:
            result.removed.append(snap)
            log.info("snapshot.pruned", snapshot=snap.full_name, user_id=str(snap.owner_id),
                     session_id=str(snap.session_id), slug=snap.session.slug)
    metrics.SNAPSHOTS_PRUNED.inc(len(result.removed))
    return result
