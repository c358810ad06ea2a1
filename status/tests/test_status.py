"""GET /api/v2/status (SPEC §8): the figures follow the platform's real state."""
from __future__ import annotations

import pytest

from medforge.ops import flags, heartbeat
from sessions_app.models import Session
from testkit.api import assert_envelope, schema_validator

pytestmark = pytest.mark.django_db

URL = "/api/v2/status"


def test_public_status_counts_gpus_and_sessions(anon_client, owner, stranger, gpus, place_session):
    place_session(owner, "running", gpus[0])
    place_session(stranger, "starting", gpus[1])
    place_session(owner, "stopped", gpus[1])
    place_session(stranger, "error", gpus[2])
    gpus[3].enabled = False
    gpus[3].save()

    resp = anon_client.get(URL)
    data = assert_envelope(resp)
    schema_validator().validate("GET", URL, resp)
    assert data["sessions"] == {"starting": 1, "running": 1, "stopping": 0, "stopped": 1, "error": 1}
    assert {k: data["gpus"][k] for k in ("total", "in_use", "free", "disabled")} == {
        "total": 4, "in_use": 2, "free": 1, "disabled": 1}
    states = {d["index"]: d["state"] for d in data["gpus"]["devices"]}
    assert states == {0: "in_use", 1: "in_use", 2: "free", 3: "disabled"}
    # Public: no user or submission counts, and no GPU UUIDs.
    assert "users" not in data and "submissions" not in data
    assert "uuid" not in data["gpus"]["devices"][0]


def test_status_follows_a_session_through_its_lifecycle(anon_client, owner, gpus, place_session):
    session = place_session(owner, "starting", gpus[0])
    assert anon_client.get(URL).json()["data"]["gpus"]["in_use"] == 1

    Session.objects.filter(pk=session.pk).update(status="running")
    data = anon_client.get(URL).json()["data"]
    assert data["sessions"]["running"] == 1 and data["sessions"]["starting"] == 0

    Session.objects.filter(pk=session.pk).update(status="stopped", active_gpu=None)
    data = anon_client.get(URL).json()["data"]
    assert data["sessions"]["running"] == 0 and data["sessions"]["stopped"] == 1
    assert data["gpus"]["in_use"] == 0 and data["gpus"]["free"] == 4


def test_staff_also_get_user_and_submission_counts(client_for, admin, owner, stranger):
    resp = client_for(admin).get(URL)
    data = assert_envelope(resp)
    schema_validator().validate("GET", URL, resp)
    assert data["users"] == {"total": 3, "active": 3, "admins": 1}
    assert "submissions" in data


def test_signed_in_non_staff_get_the_public_view(client_for, owner):
    data = assert_envelope(client_for(owner).get(URL))
    assert "users" not in data and "submissions" not in data


def test_build_maintenance_reconcile_and_storage(anon_client, settings, tmp_path):
    from runtime import factory

    settings.BUILD_VERSION = "9.9.9"
    settings.BUILD_COMMIT = "abc1234"
    settings.WORKSPACE_BACKEND = "directory"
    settings.WORKSPACE_ROOT = str(tmp_path / "ws")
    factory.reset()
    try:
        flags.set_flag(flags.MAINTENANCE, True, "upgrade")
        heartbeat.beat(heartbeat.RECONCILE)
        data = assert_envelope(anon_client.get(URL))
    finally:
        factory.reset()
    assert data["build"] == {"version": "9.9.9", "commit": "abc1234"}
    assert data["maintenance"] is True
    assert 0 <= data["reconcile"]["heartbeat_age_seconds"] < 60
    storage = data["storage"]
    assert storage["available"] is True and storage["healthy"] is True
    assert storage["backend"] == "directory" and storage["total_bytes"] > 0


def test_queue_depths_count_waiting_redis_messages(anon_client, settings):
    """Messages waiting in the real Redis broker are counted per queue (priority lists too)."""
    import redis

    url = "redis://127.0.0.1:6379/14"
    settings.CELERY_BROKER_URL = url
    r = redis.Redis.from_url(url)
    r.delete("default", "scoring", "scoring\x06\x166")
    try:
        r.rpush("default", "m1", "m2")
        r.rpush("scoring", "m3")
        r.rpush("scoring\x06\x166", "m4")
        data = assert_envelope(anon_client.get(URL))
    finally:
        r.delete("default", "scoring", "scoring\x06\x166")
    assert data["queues"] == {"default": 2, "scoring": 2}


def test_queue_depths_with_the_filesystem_broker(anon_client, settings, tmp_path):
    folder = tmp_path / "queue"
    folder.mkdir()
    for name in ("1_a.default.msg", "2_b.scoring.msg", "3_c.scoring.msg"):
        (folder / name).write_text("{}")
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(folder)}
    data = assert_envelope(anon_client.get(URL))
    assert data["queues"] == {"default": 1, "scoring": 2}


def test_unreachable_broker_and_store_degrade_but_status_answers(anon_client, client_for, admin,
                                                                 settings):
    from runtime import factory

    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    settings.WORKSPACE_BACKEND = "zfs"
    settings.WORKSPACE_ZFS_BIN = "/nonexistent/zfs"
    factory.reset()
    try:
        resp = anon_client.get(URL)
        data = assert_envelope(resp)
        schema_validator().validate("GET", URL, resp)
        staff = assert_envelope(client_for(admin).get(URL))
    finally:
        factory.reset()
    assert data["queues"] == {"default": None, "scoring": None}
    assert data["storage"]["available"] is False and data["storage"]["healthy"] is False
    # The reason (paths, executables) is for operators; the public page only says it failed.
    assert "zfs" not in data["storage"]["error"] and "unavailable" in data["storage"]["error"]
    assert "zfs" in staff["storage"]["error"]


class FakeNvml:
    """A stand-in for NVML (no NVIDIA GPU on the test machine): fixed telemetry by uuid."""

    def discover(self):
        return []

    def telemetry(self):
        return {"GPU-test-0001": {"utilization_pct": 87.0, "memory_used_mb": 2048,
                                 "temperature_c": 61.0}}


def test_nvml_figures_appear_where_the_inventory_offers_them(anon_client, client, gpus):
    from prometheus_client.parser import text_string_to_metric_families

    from runtime import factory

    factory.override(gpu_inventory=FakeNvml())
    try:
        resp = anon_client.get(URL)
        metrics_text = client.get("/metrics").content.decode()
    finally:
        factory.reset()
    data = assert_envelope(resp)
    schema_validator().validate("GET", URL, resp)
    devices = {d["index"]: d for d in data["gpus"]["devices"]}
    assert data["gpus"]["telemetry_available"] is True
    assert devices[1]["utilization_pct"] == 87.0 and devices[1]["memory_used_mb"] == 2048
    assert devices[0]["utilization_pct"] is None
    samples = {(s.name, s.labels.get("index")): s.value
               for f in text_string_to_metric_families(metrics_text) for s in f.samples}
    assert samples[("medforge_gpu_utilization_percent", "1")] == 87.0
    assert samples[("medforge_gpu_memory_used_bytes", "1")] == 2048 * 1024 * 1024
