"""GET /metrics (SPEC §8): Prometheus text whose numbers follow real state and events."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from prometheus_client.parser import text_string_to_metric_families

from medforge.ops import heartbeat, metrics
from sessions_app.models import Session

pytestmark = pytest.mark.django_db


def scrape(client, **extra) -> dict[tuple[str, tuple], float]:
    resp = client.get("/metrics", **extra)
    assert resp.status_code == 200, resp.content[:300]
    assert resp["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(resp.content.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, metric, **labels) -> float | None:
    return samples.get((metric, tuple(sorted(labels.items()))))


def test_sessions_and_gpus_by_state(client, owner, stranger, gpus, place_session):
    running = place_session(owner, "running", gpus[0])
    place_session(stranger, "starting", gpus[1])
    place_session(owner, "error", gpus[2])
    gpus[3].enabled = False
    gpus[3].save()

    s = scrape(client)
    assert value(s, "medforge_sessions", state="running") == 1
    assert value(s, "medforge_sessions", state="starting") == 1
    assert value(s, "medforge_sessions", state="stopping") == 0
    assert value(s, "medforge_sessions", state="error") == 1
    assert value(s, "medforge_gpus", state="in_use") == 2
    assert value(s, "medforge_gpus", state="free") == 1
    assert value(s, "medforge_gpus", state="disabled") == 1

    # The running session is stopped: the next scrape shows it, with its GPU free again.
    Session.objects.filter(pk=running.pk).update(status="stopped", active_gpu=None)
    s = scrape(client)
    assert value(s, "medforge_sessions", state="running") == 0
    assert value(s, "medforge_sessions", state="stopped") == 1
    assert value(s, "medforge_gpus", state="free") == 2


def test_stuck_sessions_show_their_age(client, owner, gpus, place_session):
    from datetime import timedelta

    from django.utils import timezone

    stuck = place_session(owner, "starting", gpus[0])
    Session.objects.filter(pk=stuck.pk).update(created_at=timezone.now() - timedelta(minutes=20))
    s = scrape(client)
    assert value(s, "medforge_session_oldest_age_seconds", state="starting") >= 1200
    assert value(s, "medforge_session_oldest_age_seconds", state="stopping") == 0


def test_heartbeat_age_and_build_info(client, settings):
    settings.BUILD_VERSION = "1.2.3"
    settings.BUILD_COMMIT = "deadbeef"
    heartbeat.beat(heartbeat.RECONCILE)
    s = scrape(client)
    assert 0 <= value(s, "medforge_heartbeat_age_seconds", name="reconcile") < 60
    assert value(s, "medforge_build_info", version="1.2.3", commit="deadbeef") == 1


def test_recorded_events_appear(client):
    """Counters and histograms recorded where things happen (tasks, scoring) are exposed."""
    before = scrape(client)
    metrics.SESSION_START_DURATION.observe(3.0)
    metrics.SESSION_STARTS_FAILED.labels(reason="image_pull").inc()
    metrics.SCORING_DURATION.labels(competition="titanic-survival").observe(0.2)
    metrics.RECONCILE_FAILURES.inc()
    metrics.FORWARD_AUTH_DECISIONS.labels(status="200", path="cache").inc(2)
    after = scrape(client)

    def delta(name, **labels):
        return (value(after, name, **labels) or 0) - (value(before, name, **labels) or 0)

    assert delta("medforge_session_start_duration_seconds_count") == 1
    assert delta("medforge_session_start_duration_seconds_bucket", le="5.0") == 1
    assert delta("medforge_session_start_duration_seconds_bucket", le="2.0") == 0
    assert delta("medforge_session_starts_failed_total", reason="image_pull") == 1
    assert delta("medforge_scoring_duration_seconds_count", competition="titanic-survival") == 1
    assert delta("medforge_reconcile_failures_total") == 1
    assert delta("medforge_forward_auth_decisions_total", status="200", path="cache") == 2


def test_requests_are_counted_by_route_not_raw_path(client):
    labels = {"route": "healthz", "method": "GET", "status_class": "2xx"}
    before = value(scrape(client), "medforge_http_request_duration_seconds_count", **labels) or 0
    client.get("/healthz")
    client.get("/healthz")
    client.get("/api/v2/no-such-thing-12345")
    s = scrape(client)
    assert value(s, "medforge_http_request_duration_seconds_count", **labels) - before >= 2
    routes = {dict(k[1]).get("route") for k in s if k[0].startswith("medforge_http_request")}
    assert "<unmatched>" in routes
    assert not any(r and "no-such-thing" in r for r in routes)


def test_metrics_refused_from_outside_without_token(client, settings):
    settings.METRICS_TOKEN = "s3cret-metrics-token"
    settings.METRICS_ALLOWED_NETWORKS = ["10.20.0.0/16"]
    outside = {"REMOTE_ADDR": "203.0.113.9"}
    resp = client.get("/metrics", **outside)
    assert resp.status_code == 403
    assert b"medforge_" not in resp.content
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong", **outside).status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics-token",
                      **outside).status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.20.3.4").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200


def test_an_internet_client_relayed_by_the_edge_is_not_internal(client, settings):
    """Through the trusted proxy the real client address decides, not the proxy's."""
    settings.METRICS_TOKEN = ""
    resp = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert resp.status_code == 403


def test_multiprocess_metrics_from_other_processes_are_merged(client, settings, tmp_path):
    """gunicorn workers and Celery children write multiprocess files; compose gives each
    service its own directory below METRICS_MULTIPROC_ROOT, and one scrape merges them all."""
    root = tmp_path / "metrics"
    for service, n in (("worker", 2), ("beat", 1)):
        folder = root / service
        folder.mkdir(parents=True)
        code = textwrap.dedent(f"""
            from prometheus_client import Counter, Histogram
            c = Counter("medforge_session_starts_failed_total", "x", ["reason"])
            h = Histogram("medforge_session_start_duration_seconds", "x",
                          buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300))
            for _ in range({n}):
                c.labels(reason="mp_test").inc()
                h.observe(7)
        """)
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
        subprocess.run([sys.executable, "-c", code], check=True, env=env)
    settings.METRICS_MULTIPROC_ROOT = str(root)
    s = scrape(client)
    assert value(s, "medforge_session_starts_failed_total", reason="mp_test") == 3
    assert value(s, "medforge_session_start_duration_seconds_count") == 3
    assert value(s, "medforge_session_start_duration_seconds_bucket", le="10.0") == 3
    # State gauges are still there in multiprocess mode.
    assert value(s, "medforge_sessions", state="running") == 0
