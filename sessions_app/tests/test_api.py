"""The sessions API as a client sees it: envelopes, problem codes, permissions, and every
documented response validated against the served OpenAPI schema. Tasks are recorded, not run
(the lifecycle has its own Docker tests)."""
from __future__ import annotations

import pytest
from django.utils import timezone

from medforge.ops.flags import MAINTENANCE, set_flag
from sessions_app.factories import GPUFactory, PackFactory, SessionFactory
from sessions_app.models import Session, SessionEvent, Snapshot
from testkit.api import (
    SchemaValidator,
    assert_envelope,
    assert_problem,
    schema_validator,
)

pytestmark = pytest.mark.django_db

EXT = "/api/v2/external/sessions"
INT = "/api/v2/internal/sessions"


class _LiteralFirst(SchemaValidator):
    """The shared validator takes the first template matching a path, which can be
    `/sessions/{session_id}` for `/sessions/current`; a literal segment must win."""

    def template_for(self, path: str) -> str:
        matches = [t for rx, t in self._routes if rx.match(path)]
        assert matches, f"{path} is not documented in the OpenAPI schema"
        return min(matches, key=lambda t: t.count("{"))


def check(resp, method, path):
    _LiteralFirst(schema_validator().schema).validate(method, path, resp)
    return resp


def create(client, base=EXT, body=None):
    return check(client.post(base, body or {}, format="json"), "POST", base)


def test_create_answers_201_starting_and_queues_the_start(owner, client_for, gpus, pack, queued,
                                                          django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        resp = create(client_for(owner))
    data = assert_envelope(resp, 201)
    assert data["status"] == "starting"
    assert data["gpu"] == {"index": 0}
    assert data["pack"]["slug"] == "default-pack"
    assert data["exposure"] == "external"
    assert data["host"] == f"s-{data['slug']}.external.medforge.localhost"
    assert data["ide_url"] is None  # only while running
    assert "upstream" not in data and "container_id" not in data
    assert queued == [("start_session", data["id"])]
    assert list(SessionEvent.objects.filter(session_id=data["id"]).values_list("kind", flat=True)) == ["created"]


def test_second_user_gets_the_next_gpu_and_disabled_gpus_are_skipped(owner, stranger, client_for,
                                                                     gpus, pack):
    gpus[1].enabled = False
    gpus[1].save()
    assert assert_envelope(create(client_for(owner)), 201)["gpu"]["index"] == 0
    assert assert_envelope(create(client_for(stranger)), 201)["gpu"]["index"] == 2


def test_unknown_field_is_422_and_creates_nothing(owner, client_for, gpus, pack, queued):
    body = assert_problem(create(client_for(owner), body={"pack": "x"}), 422, "validation_error")
    assert body["errors"][0]["field"] == "pack"
    assert Session.objects.count() == 0 and queued == []


def test_pack_errors(owner, client_for, gpus, pack):
    client = client_for(owner)
    assert_problem(create(client, body={"pack_id": "nope"}), 404, "pack_not_found")
    # A non-ASCII digit is a slug that matches nothing, not a crash in int().
    assert_problem(create(client, body={"pack_id": "\u00b2"}), 404, "pack_not_found")
    PackFactory(slug="old", deprecated=True)
    assert_problem(create(client, body={"pack_id": "old"}), 409, "pack_deprecated")
    internal_only = PackFactory(slug="secret", exposure="internal")
    assert_problem(create(client, body={"pack_id": str(internal_only.pk)}), 422,
                   "pack_exposure_mismatch")
    assert Session.objects.count() == 0
    chosen = PackFactory(slug="other")
    data = assert_envelope(create(client, body={"pack_id": chosen.slug}), 201)
    assert data["pack"]["slug"] == "other"


def test_no_gpus_available(owner, stranger, client_for, pack):
    GPUFactory(index=0)
    assert_envelope(create(client_for(owner)), 201)
    assert_problem(create(client_for(stranger)), 409, "no_gpus_available")


def test_limit_counts_both_exposures(entitled, client_for, gpus, pack):
    client = client_for(entitled)
    assert_envelope(create(client, EXT), 201)
    body = assert_problem(create(client, INT), 409, "concurrent_session_limit")
    assert "limit is 1" in body["detail"]
    entitled.max_concurrent_sessions = 2
    entitled.save()
    assert assert_envelope(create(client, INT), 201)["exposure"] == "internal"


def test_internal_surface_needs_the_entitlement(owner, client_for, gpus, pack):
    client = client_for(owner)
    assert_problem(create(client, INT), 403, "internal_access_required")
    assert_problem(check(client.get(INT), "GET", INT), 403, "internal_access_required")
    assert_problem(client.get(INT + "/current"), 403, "internal_access_required")
    assert Session.objects.count() == 0


def test_maintenance_refuses_new_sessions_but_keeps_running_ones(owner, stranger, client_for,
                                                                gpus, pack):
    running = SessionFactory(owner=stranger, gpu=gpus[0], pack=pack)
    set_flag(MAINTENANCE, True, reason="upgrade")
    assert_problem(create(client_for(owner)), 503, "maintenance")
    running.refresh_from_db()
    assert running.status == "running"
    set_flag(MAINTENANCE, False)
    assert_envelope(create(client_for(owner)), 201)


def test_anonymous_is_401(anon_client, gpus, pack):
    assert_problem(anon_client.post(EXT, {}, format="json"), 401, "not_authenticated")


def test_current_list_and_status_filter(owner, client_for, gpus, pack):
    client = client_for(owner)
    path = EXT + "/current"
    assert assert_envelope(check(client.get(path), "GET", path))["session"] is None
    old = SessionFactory(owner=owner, pack=pack, gpu=gpus[1], status="stopped",
                         created_at=timezone.now() - timezone.timedelta(hours=1))
    new = assert_envelope(create(client), 201)
    current = assert_envelope(check(client.get(path), "GET", path))["session"]
    assert current["id"] == new["id"]

    listed = check(client.get(EXT), "GET", EXT)
    assert [s["id"] for s in assert_envelope(listed)] == [new["id"], str(old.id)]
    stopped = check(client.get(EXT, {"status": "stopped"}), "GET", EXT)
    assert [s["id"] for s in assert_envelope(stopped)] == [str(old.id)]
    assert_problem(client.get(EXT, {"status": "bogus"}), 400, "invalid_filter")
    page = client.get(EXT, {"limit": 1})
    body = page.json()
    assert len(body["data"]) == 1 and body["meta"]["has_more"] is True
    rest = client.get(EXT, {"limit": 1, "cursor": body["meta"]["next_cursor"]}).json()
    assert [s["id"] for s in rest["data"]] == [str(old.id)]
    # The internal surface does not list external sessions.
    assert client_for(owner).get(EXT.replace("external", "internal")).status_code == 403


def test_detail_owner_admin_stranger_and_other_exposure(owner, stranger, admin, client_for, gpus,
                                                       pack):
    session = SessionFactory(owner=owner, pack=pack, gpu=gpus[0], upstream="127.0.0.1:49999")
    path = f"{EXT}/{session.id}"
    data = assert_envelope(check(client_for(owner).get(path), "GET", path))
    assert data["ide_url"] == f"http://s-{session.slug}.external.medforge.localhost/"
    assert "127.0.0.1:49999" not in str(data)
    assert assert_envelope(client_for(admin).get(path))["id"] == str(session.id)
    assert_problem(check(client_for(stranger).get(path), "GET", path), 404, "session_not_found")
    assert_problem(client_for(admin).get(f"{INT}/{session.id}"), 404, "session_not_found")


def test_stop_is_202_intent_only_and_idempotent(owner, client_for, gpus, pack, queued,
                                                django_capture_on_commit_callbacks):
    session = SessionFactory(owner=owner, pack=pack, gpu=gpus[0])
    client = client_for(owner)
    path = f"{EXT}/{session.id}/stop"
    with django_capture_on_commit_callbacks(execute=True):
        first = assert_envelope(check(client.post(path), "POST", path), 202)
    assert first["session"]["status"] == "stopping" and first["message"] == "stopping"
    assert queued == [("stop_session", str(session.id))]
    with django_capture_on_commit_callbacks(execute=True):
        again = assert_envelope(client.post(path), 202)
    assert again["message"] == "already stopping" and len(queued) == 1
    Session.objects.filter(pk=session.pk).update(status="stopped", active_gpu=None)
    done = assert_envelope(client.post(path), 202)
    assert done["message"] == "already terminal" and done["session"]["status"] == "stopped"
    assert len(queued) == 1


def test_stranger_cannot_stop(owner, stranger, client_for, gpus, pack, queued):
    session = SessionFactory(owner=owner, pack=pack, gpu=gpus[0])
    assert_problem(client_for(stranger).post(f"{EXT}/{session.id}/stop"), 404, "session_not_found")
    session.refresh_from_db()
    assert session.status == "running" and queued == []


def test_events_are_listed_oldest_first(owner, client_for, gpus, pack):
    client = client_for(owner)
    sid = assert_envelope(create(client), 201)["id"]
    client.post(f"{EXT}/{sid}/stop")
    path = f"{EXT}/{sid}/events"
    events = assert_envelope(check(client.get(path), "GET", path))
    assert [e["kind"] for e in events] == ["created", "stop_requested"]
    assert "owner" in events[1]["message"]


def _sse_frames(resp) -> list[dict]:
    """Parse a server-sent event stream into frames ({id, event, data})."""
    import json

    frames, frame = [], {}
    for line in b"".join(resp.streaming_content).decode().split("\n"):
        if not line:
            if frame:
                frames.append(frame)
            frame = {}
        elif not line.startswith((":", "retry:")):
            key, _, value = line.partition(": ")
            frame[key] = json.loads(value) if key == "data" else value
    return frames


def test_event_stream_sends_each_event_once_then_ends_when_terminal(owner, stranger, client_for,
                                                                     gpus, pack, settings):
    settings.SESSION_EVENTS_STREAM_POLL_SECONDS = 0.01
    session = SessionFactory(owner=owner, pack=pack, gpu=gpus[0], status="running")
    first = SessionEvent.objects.create(session=session, kind="created", message="requested")
    SessionEvent.objects.create(session=session, kind="running", message="IDE answering")
    Session.objects.filter(pk=session.pk).update(status="stopped", active_gpu=None)
    SessionEvent.objects.create(session=session, kind="stopped", message="saved")
    path = f"{EXT}/{session.id}/events/stream"
    client = client_for(owner)
    resp = client.get(path, HTTP_ACCEPT="text/event-stream")
    assert resp.status_code == 200 and resp["Content-Type"] == "text/event-stream"
    frames = _sse_frames(resp)
    assert [f["event"] for f in frames] == ["session_event"] * 3 + ["end"]
    assert [f["data"]["kind"] for f in frames[:3]] == ["created", "running", "stopped"]
    assert frames[-1]["data"] == {"status": "stopped"}
    # Reconnecting with Last-Event-ID resumes after what the client already has.
    again = _sse_frames(client.get(path, HTTP_ACCEPT="text/event-stream",
                                   HTTP_LAST_EVENT_ID=str(first.id)))
    assert [f["data"]["kind"] for f in again[:-1]] == ["running", "stopped"]
    # Someone else's session, or the other surface, is not found; a bad id is a 400.
    assert_problem(client_for(stranger).get(path, HTTP_ACCEPT="text/event-stream"), 404,
                   "session_not_found")
    assert_problem(client.get(f"{INT}/{session.id}/events/stream"), 403,
                   "internal_access_required")
    assert_problem(client.get(path, HTTP_LAST_EVENT_ID="x"), 400, "invalid_cursor")


def test_event_stream_of_a_live_session_ends_at_its_time_limit(owner, client_for, gpus, pack,
                                                               settings):
    settings.SESSION_EVENTS_STREAM_POLL_SECONDS = 0.01
    settings.SESSION_EVENTS_STREAM_SECONDS = 0.05
    session = SessionFactory(owner=owner, pack=pack, gpu=gpus[0], status="starting")
    SessionEvent.objects.create(session=session, kind="created", message="requested")
    frames = _sse_frames(client_for(owner).get(f"{EXT}/{session.id}/events/stream"))
    assert [f["event"] for f in frames] == ["session_event"]


def test_snapshots_list_and_restore(owner, stranger, client_for, gpus, pack, queued,
                                    django_capture_on_commit_callbacks):
    old = SessionFactory(owner=owner, pack=pack, gpu=gpus[0], status="stopped",
                         workspace_id=f"{owner.pk}/x")
    snap = Snapshot.objects.create(session=old, owner=owner, name="stop-1", kind="stop",
                                   full_name=f"{owner.pk}/x@stop-1")
    client = client_for(owner)
    path = "/api/v2/external/snapshots"
    listed = assert_envelope(check(client.get(path), "GET", path))
    assert [s["name"] for s in listed] == ["stop-1"]
    detail = assert_envelope(client.get(f"{EXT}/{old.id}"))
    assert [s["name"] for s in detail["snapshots"]] == ["stop-1"]

    restore = f"/api/v2/external/snapshots/{snap.id}/restore"
    assert_problem(client_for(stranger).post(restore, {}, format="json"), 404, "snapshot_not_found")
    with django_capture_on_commit_callbacks(execute=True):
        resp = client.post(restore, {}, format="json")
    data = assert_envelope(check(resp, "POST", restore), 201)
    assert data["restored_from"] == str(snap.id) and data["status"] == "starting"
    assert queued == [("start_session", data["id"])]


def test_admin_session_list_with_filters(owner, stranger, admin, client_for, gpus, pack):
    a = SessionFactory(owner=owner, pack=pack, gpu=gpus[0], upstream="127.0.0.1:1")
    SessionFactory(owner=stranger, pack=pack, gpu=gpus[1], status="stopped")
    path = "/api/v2/admin/sessions"
    rows = assert_envelope(check(client_for(admin).get(path, {"status": "running"}), "GET", path))
    assert [r["id"] for r in rows] == [str(a.id)]
    assert rows[0]["upstream"] == "127.0.0.1:1" and rows[0]["owner"]["id"] == owner.pk
    rows = assert_envelope(client_for(admin).get(path, {"user": stranger.pk}))
    assert len(rows) == 1 and rows[0]["status"] == "stopped"
    assert_problem(client_for(admin).get(path, {"user": "x"}), 400, "invalid_filter")
    assert_problem(client_for(admin).get(path, {"gpu": "\u00b2"}), 400, "invalid_filter")
    assert_problem(client_for(owner).get(path), 403, "admin_required")


def test_packs_offered_per_surface(entitled, client_for, pack):
    PackFactory(slug="internal-only", exposure="internal")
    PackFactory(slug="gone", deprecated=True)
    ext = assert_envelope(client_for(entitled).get("/api/v2/external/packs"))
    internal = assert_envelope(client_for(entitled).get("/api/v2/internal/packs"))
    assert [p["slug"] for p in ext] == ["default-pack"]
    assert [p["slug"] for p in internal] == ["default-pack", "internal-only"]
