"""Services without containers: idle activity and culling, GPUs (audited enable/disable,
discovery sync), local pack registration, and the management commands around them."""
from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from medforge.accounts.models import AuditLog
from medforge.ops.flags import maintenance_on
from runtime.gpus import StaticInventory
from sessions_app import selectors, services
from sessions_app.factories import GPUFactory, PackFactory, SessionFactory
from sessions_app.models import GPU, Pack, Session, Snapshot
from testkit.api import assert_problem

pytestmark = pytest.mark.django_db


@pytest.fixture
def client():
    """A browser on the platform: state-changing admin posts carry the platform's Origin."""
    from django.conf import settings
    from django.test import Client

    return Client(HTTP_ORIGIN=f"http://{settings.BASE_DOMAIN}")

IMAGE = "sha256:" + "ab" * 32


def ago(seconds: int):
    return timezone.now() - timezone.timedelta(seconds=seconds)


def test_record_activity_only_moves_forward_and_only_for_running(owner, gpus, pack):
    a = SessionFactory(owner=owner, pack=pack, gpu=gpus[0], last_activity_at=ago(100))
    b = SessionFactory(owner=owner, pack=pack, gpu=gpus[1], status="stopped")
    newer, older = ago(10), ago(500)
    assert services.session_record_activity(seen={a.slug: newer, b.slug: newer}) == 1
    assert services.session_record_activity(seen={a.slug: older}) == 0
    a.refresh_from_db(), b.refresh_from_db()
    assert a.last_activity_at == newer and b.last_activity_at is None


def test_cull_idle_stops_idle_sessions_only_when_enabled(owner, stranger, entitled, gpus, pack,
                                                         settings, queued,
                                                         django_capture_on_commit_callbacks):
    idle = SessionFactory(owner=owner, pack=pack, gpu=gpus[0], started_at=ago(7200),
                          last_activity_at=ago(3700))
    busy = SessionFactory(owner=stranger, pack=pack, gpu=gpus[1], started_at=ago(7200),
                          last_activity_at=ago(60))
    never = SessionFactory(owner=entitled, pack=pack, gpu=gpus[2], started_at=ago(7200))
    settings.SESSION_IDLE_TIMEOUT_SECONDS = 0
    assert services.sessions_cull_idle() == []
    settings.SESSION_IDLE_TIMEOUT_SECONDS = 3600
    with django_capture_on_commit_callbacks(execute=True):
        culled = services.sessions_cull_idle()
    assert sorted(culled) == sorted([idle.slug, never.slug])
    assert {sid for _, sid in queued} == {str(idle.id), str(never.id)}
    busy.refresh_from_db()
    idle.refresh_from_db()
    assert busy.status == "running" and idle.status == "stopping"
    assert "idle" in idle.events.last().message


def test_disabled_gpu_is_not_allocated_and_the_change_is_audited(owner, admin, gpus, pack):
    services.gpu_set_enabled(gpu=gpus[0], enabled=False, by=admin, reason="fan failure")
    row = AuditLog.objects.get(action="gpu.disable")
    assert row.actor == admin and row.data["reason"] == "fan failure"
    assert services.session_create(user=owner, exposure="external").gpu.index == 1
    services.gpu_set_enabled(gpu=gpus[0], enabled=True, by=admin)
    assert AuditLog.objects.filter(action="gpu.enable").count() == 1
    assert selectors.gpu_overview()["free"] == 3


def test_gpus_sync_adds_refreshes_and_disables_missing(db):
    GPUFactory(index=7, uuid="GPU-gone")
    report = services.gpus_sync(inventory=StaticInventory([
        {"index": 0, "uuid": "GPU-a", "name": "A100", "memory_mb": 40960},
        {"index": 1, "uuid": "GPU-b", "name": "A100", "memory_mb": 40960}]))
    assert report == {"added": [0, 1], "updated": [], "missing": [7]}
    gone = GPU.objects.get(index=7)
    assert gone.enabled is False and gone.note == "not found by discovery"
    again = services.gpus_sync(inventory=StaticInventory([
        {"index": 0, "uuid": "GPU-a", "name": "A100", "memory_mb": 40960}]))
    assert again == {"added": [], "updated": [0], "missing": [1, 7]}


def test_gpus_command_discovers_lists_and_toggles(db, settings):
    settings.GPU_DISCOVERY = "static"
    settings.GPU_STATIC = [{"index": i, "uuid": f"GPU-s-{i}", "name": "Sim", "memory_mb": 1}
                           for i in range(2)]
    from runtime import factory

    factory.reset()
    try:
        out = io.StringIO()
        call_command("gpus", "discover", stdout=out)
        assert "added [0, 1]" in out.getvalue()
        out = io.StringIO()
        call_command("gpus", "disable", "1", "--reason", "maintenance", stdout=out)
        assert "GPU 1 disabled" in out.getvalue() and "[maintenance]" in out.getvalue()
        assert GPU.objects.get(index=1).enabled is False
        call_command("gpus", "enable", "1", stdout=io.StringIO())
        assert GPU.objects.get(index=1).enabled is True
        with pytest.raises(CommandError):
            call_command("gpus", "disable", "9")
    finally:
        factory.reset()


def test_pack_register_local_is_idempotent_and_the_single_default(db):
    other = PackFactory(slug="cuda", is_default=True)
    first = services.pack_register_local(image_id=IMAGE)
    second = services.pack_register_local(image_id=IMAGE)
    assert first.pk == second.pk and Pack.objects.filter(slug="local-default").count() == 1
    assert second.is_default and second.exposure == "both" and second.image == IMAGE
    other.refresh_from_db()
    assert other.is_default is False
    with pytest.raises(ValueError):
        services.pack_register_local(image_id="medforge/pack-local:dev")
    out = io.StringIO()
    call_command("packs", "register-local", "--image-id", "sha256:" + "cd" * 32, stdout=out)
    assert Pack.objects.get(slug="local-default").image == "sha256:" + "cd" * 32
    call_command("packs", stdout=out)
    assert "local-default" in out.getvalue()


def test_drain_refuses_new_sessions_and_undrain_accepts_again(owner, client_for, gpus, pack):
    running = SessionFactory(owner=owner, pack=pack, gpu=gpus[3])
    call_command("drain", "--reason", "upgrade", stdout=io.StringIO())
    assert maintenance_on()
    assert_problem(client_for(owner).post("/api/v2/external/sessions", {}, format="json"),
                   503, "maintenance")
    running.refresh_from_db()
    assert running.status == "running"
    call_command("undrain", stdout=io.StringIO())
    assert not maintenance_on()
    running.status, running.active_gpu = "stopped", None
    running.save()
    assert client_for(owner).post("/api/v2/external/sessions", {}, format="json").status_code == 201


def test_snapshots_command_by_slug_and_user(owner, stranger, gpus, pack):
    s1 = SessionFactory(owner=owner, pack=pack, gpu=gpus[0], status="stopped")
    s2 = SessionFactory(owner=stranger, pack=pack, gpu=gpus[1], status="stopped")
    Snapshot.objects.create(session=s1, owner=owner, name="stop-1", kind="stop", full_name="a@stop-1")
    Snapshot.objects.create(session=s2, owner=stranger, name="stop-2", kind="stop", full_name="b@stop-2")
    out = io.StringIO()
    call_command("snapshots", s1.slug, stdout=out)
    assert "a@stop-1" in out.getvalue() and "b@stop-2" not in out.getvalue()
    out = io.StringIO()
    call_command("snapshots", "--user", str(stranger.pk), stdout=out)
    assert "b@stop-2" in out.getvalue() and "a@stop-1" not in out.getvalue()
    with pytest.raises(CommandError):
        call_command("snapshots", "zzzzzzzz")


def test_admin_actions_stop_session_and_disable_gpu(owner, admin, gpus, pack, client, queued,
                                                    django_capture_on_commit_callbacks):
    session = SessionFactory(owner=owner, pack=pack, gpu=gpus[0])
    client.force_login(admin)
    with django_capture_on_commit_callbacks(execute=True):
        resp = client.post(reverse("admin:sessions_app_session_changelist"),
                           {"action": "stop_sessions", "_selected_action": [str(session.pk)]})
    assert resp.status_code == 302
    session.refresh_from_db()
    assert session.status == "stopping" and queued == [("stop_session", str(session.id))]
    assert AuditLog.objects.filter(action="session.stop", actor=admin).exists()

    resp = client.post(reverse("admin:sessions_app_gpu_changelist"),
                       {"action": "disable_gpus", "_selected_action": [str(gpus[2].pk)]})
    assert resp.status_code == 302
    gpus[2].refresh_from_db()
    assert gpus[2].enabled is False
    assert AuditLog.objects.filter(action="gpu.disable", actor=admin).exists()
    # Every sessions admin page renders.
    for name in ("session", "gpu", "pack", "snapshot", "sessionevent"):
        assert client.get(reverse(f"admin:sessions_app_{name}_changelist")).status_code == 200
    assert client.get(reverse("admin:sessions_app_session_change", args=[session.pk])).status_code == 200
    # The row is read-only there: only the lifecycle writes it.
    assert client.post(reverse("admin:sessions_app_session_change", args=[session.pk]),
                       {}).status_code == 403


def test_admin_restore_action_creates_a_session_for_the_owner(owner, admin, gpus, pack, client):
    old = SessionFactory(owner=owner, pack=pack, gpu=gpus[0], status="stopped")
    snap = Snapshot.objects.create(session=old, owner=owner, name="stop-1", kind="stop",
                                   full_name="x@stop-1")
    client.force_login(admin)
    client.post(reverse("admin:sessions_app_snapshot_changelist"),
                {"action": "restore_snapshots", "_selected_action": [str(snap.pk)]})
    new = Session.objects.get(restored_from=snap)
    assert new.owner == owner and new.status == "starting"
    assert AuditLog.objects.filter(action="session.restore", actor=admin).exists()
    # Snapshots leave only through retention, which removes the backend's copy too.
    assert client.post(reverse("admin:sessions_app_snapshot_delete", args=[snap.pk]),
                       {"post": "yes"}).status_code == 403
    assert Snapshot.objects.filter(pk=snap.pk).exists()


def test_restore_of_a_snapshot_pruned_meanwhile_is_refused_and_allocates_nothing(
        owner, gpus, pack, monkeypatch):
    """Retention may prune between the restore's first check and the allocation; the check
    repeated under the owner's lock refuses it instead of starting a doomed session."""
    old = SessionFactory(owner=owner, pack=pack, gpu=gpus[0], status="stopped")
    snap = Snapshot.objects.create(session=old, owner=owner, name="stop-1", kind="stop",
                                   full_name="x@stop-1")
    real_allocate = services._allocate

    def prune_first(**kwargs):
        Snapshot.objects.filter(pk=snap.pk).update(deleted_at=timezone.now())
        return real_allocate(**kwargs)

    monkeypatch.setattr(services, "_allocate", prune_first)
    with pytest.raises(services.Problem) as refused:
        services.session_restore(snapshot=snap, by=owner)
    assert refused.value.code == "snapshot_not_found"
    assert not Session.objects.filter(restored_from=snap).exists()


def test_active_session_counts(owner, stranger, gpus, pack):
    SessionFactory(owner=owner, pack=pack, gpu=gpus[0])
    SessionFactory(owner=owner, pack=pack, gpu=gpus[1], status="stopped")
    assert selectors.active_session_counts([owner.pk, stranger.pk]) == {owner.pk: 1, stranger.pk: 0}
