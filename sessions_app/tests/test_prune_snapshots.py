"""manage.py prune_snapshots: retention keeps the newest N per user and all younger than D
days; dry run by default; --force removes exactly the rest from the store and marks the rows.
Snapshots live in a real DirectoryWorkspaces store on disk."""
from __future__ import annotations

from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from medforge.accounts.factories import UserFactory
from runtime import factory
from runtime.workspaces import DirectoryWorkspaces
from sessions_app.models import Snapshot

pytestmark = pytest.mark.django_db


@pytest.fixture
def store(settings, tmp_path):
    settings.WORKSPACE_BACKEND = "directory"
    settings.WORKSPACE_ROOT = str(tmp_path / "ws")
    factory.reset()
    yield factory.get_workspace_store()
    factory.reset()


@pytest.fixture
def snap(store, gpus, place_session):
    """snap(user, age_days) → a Snapshot row backed by a real snapshot in the store."""
    now = timezone.now()

    def make(user, age_days: float, *, session=None) -> Snapshot:
        session = session or place_session(user, "stopped", gpus[0])
        ws = store.create(user.pk, str(session.pk))
        Path(ws.host_path, "notes.txt").write_text(f"{age_days} days old")
        name = f"stop-{int((now - timedelta(days=age_days)).timestamp() * 1000)}"
        info = store.snapshot(ws.id, name)
        return Snapshot.objects.create(
            session=session, owner=user, name=name, full_name=info.full_name, kind="stop",
            created_at=now - timedelta(days=age_days), size_bytes=info.size_bytes)

    return make


def exists(store: DirectoryWorkspaces, s: Snapshot) -> bool:
    workspace_id, _, name = s.full_name.rpartition("@")
    return any(i.name == name for i in store.list_snapshots(workspace_id))


@pytest.fixture
def population(snap, gpus, place_session):
    a, b, c = (UserFactory(handle=h, email=f"{h}@example.org") for h in ("ann", "bob", "cid"))
    ann = [snap(a, d) for d in (1, 3, 10, 20, 30)]
    bob = [snap(b, d) for d in (40, 50)]
    cid = [snap(c, d) for d in (1, 2, 3, 4.5)]
    gone = snap(a, 60)
    Snapshot.objects.filter(pk=gone.pk).update(deleted_at=timezone.now())
    # ann's 20-day snapshot is being restored into a starting session: it must stay.
    place_session(a, "starting", gpus[1], restored_from=ann[3])
    doomed = [ann[2], ann[4]]
    kept = [ann[0], ann[1], ann[3], *bob, *cid]
    return doomed, kept


def run(*args) -> str:
    out = StringIO()
    call_command("prune_snapshots", *args, stdout=out)
    return out.getvalue()


def test_dry_run_lists_exactly_the_snapshots_outside_the_policy(store, population):
    doomed, kept = population
    out = run("--keep", "2", "--days", "7")
    listed = {line.split()[2] for line in out.splitlines() if "would delete:" in line}
    assert listed == {s.full_name for s in doomed}
    assert "nothing was changed" in out
    # Nothing changed: every snapshot is still in the store and live in the database.
    assert all(exists(store, s) for s in doomed + kept)
    assert Snapshot.objects.filter(deleted_at__isnull=True).count() == len(doomed + kept)


def test_force_removes_exactly_those(store, population):
    doomed, kept = population
    out = run("--keep", "2", "--days", "7", "--force")
    assert "removed 2, failed 0" in out
    for s in doomed:
        s.refresh_from_db()
        assert s.deleted_at is not None and not exists(store, s)
    for s in kept:
        s.refresh_from_db()
        assert s.deleted_at is None and exists(store, s), s.full_name
    # Idempotent: a second pass finds nothing more to do.
    assert "removed 0, failed 0" in run("--keep", "2", "--days", "7", "--force")


def test_defaults_come_from_settings(store, population, settings):
    settings.SNAPSHOT_KEEP_PER_USER = 1
    settings.SNAPSHOT_KEEP_DAYS = 0
    out = run()
    # keep 1 per user, no age protection: ann keeps only 1d (+ the restoring 20d), bob 40d, cid 1d.
    assert "policy: keep newest 1 per user and all younger than 0 days" in out
    assert sum("would delete:" in line for line in out.splitlines()) == 3 + 1 + 3


def test_a_snapshot_already_gone_from_the_store_is_marked(store, population):
    doomed, _ = population
    store.destroy_snapshot(doomed[0].full_name)  # e.g. an operator removed it by hand
    assert "removed 2, failed 0" in run("--keep", "2", "--days", "7", "--force")
    doomed[0].refresh_from_db()
    assert doomed[0].deleted_at is not None


def test_a_store_failure_keeps_the_row_and_exits_non_zero(store, population, monkeypatch):
    doomed, _ = population
    real = store.destroy_snapshot

    def refuse(full_name):
        if full_name == doomed[0].full_name:
            raise RuntimeError("cannot destroy: filesystem has dependent clones")
        return real(full_name)

    monkeypatch.setattr(store, "destroy_snapshot", refuse)
    out = StringIO()
    with pytest.raises(CommandError, match="1 snapshot"):
        call_command("prune_snapshots", "--keep", "2", "--days", "7", "--force", stdout=out)
    assert "dependent clones" in out.getvalue()
    doomed[0].refresh_from_db()
    doomed[1].refresh_from_db()
    assert doomed[0].deleted_at is None and exists(store, doomed[0])
    assert doomed[1].deleted_at is not None


def test_negative_policy_is_refused(store, population):
    with pytest.raises(CommandError):
        run("--keep", "-1")
    assert Snapshot.objects.filter(deleted_at__isnull=False).count() == 1  # only the pre-deleted


def test_a_restore_that_begins_during_the_run_keeps_its_snapshot(store, population, gpus,
                                                                  place_session, monkeypatch):
    """The candidates are listed once; a user who restores one of them while earlier ones are
    being destroyed keeps it (the policy always keeps a snapshot being restored from)."""
    from sessions_app.retention import snapshots_prune

    first, second = sorted(population[0], key=lambda s: s.created_at)  # the order of the run
    real = store.destroy_snapshot

    def destroy_then_a_restore_begins(full_name):
        if full_name == first.full_name:
            place_session(second.owner, "starting", gpus[2], restored_from=second)
        return real(full_name)

    monkeypatch.setattr(store, "destroy_snapshot", destroy_then_a_restore_begins)
    result = snapshots_prune(keep_per_user=2, keep_days=7, force=True, store=store)
    assert [s.pk for s in result.removed] == [first.pk]
    second.refresh_from_db()
    assert second.deleted_at is None and exists(store, second)
