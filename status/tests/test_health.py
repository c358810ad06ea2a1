"""/healthz and /api/ready (SPEC §8)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from medforge.ops import heartbeat
from medforge.ops.models import Heartbeat
from testkit.api import assert_problem

pytestmark = pytest.mark.django_db


def test_healthz_ok_when_recovery_disabled(client, settings):
    settings.RECONCILE_ENABLED = False
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.json()["data"] == {"status": "ok"}


def test_healthz_degraded_when_heartbeat_is_stale(client, settings):
    settings.RECONCILE_ENABLED = True
    settings.SESSION_POLL_INTERVAL_SECONDS = 10
    assert client.get("/healthz").status_code == 503  # never beat yet
    heartbeat.beat(heartbeat.RECONCILE)
    assert client.get("/healthz").status_code == 200
    Heartbeat.objects.filter(name="reconcile").update(at=timezone.now() - timedelta(seconds=31))
    resp = client.get("/healthz")
    assert resp.status_code == 503
    assert resp.json()["data"]["status"] == "degraded"


def test_ready_reports_each_dependency(client):
    resp = client.get("/api/ready")
    body = resp.json()
    checks = body["checks"] if resp.status_code == 503 else body["data"]["checks"]
    assert set(checks) == {"database", "redis", "broker", "docker", "workspaces"}
    assert checks["database"]["ok"] is True
    assert checks["redis"]["ok"] is True


def test_ready_names_what_failed(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    resp = client.get("/api/ready")
    body = assert_problem(resp, 503, "service_unavailable")
    assert body["type"].endswith("/service_unavailable")
    assert "redis" in body["failed"] and body["checks"]["redis"]["ok"] is False
