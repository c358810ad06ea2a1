"""A real session lifecycle (the sessions services and tasks, a real Docker engine and the
local pack) seen from the operator's side: /metrics, /api/v2/status and the JSON log lines
follow it. Docker fixtures come from testkit.sessions (their own networks, cleaned up)."""
from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sessions_app import lifecycle, services
from testkit.api import schema_validator

pytestmark = [pytest.mark.docker, pytest.mark.django_db, pytest.mark.slow]


def scrape(client) -> dict:
    resp = client.get("/metrics")
    assert resp.status_code == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(resp.content.decode()) for s in f.samples}


def status(client) -> dict:
    resp = client.get("/api/v2/status")
    schema_validator().validate("GET", "/api/v2/status", resp)
    return resp.json()["data"]


def test_metrics_status_and_logs_follow_a_real_session(client, owner, gpus,
                                                       local_pack,  # noqa: F811
                                                       cleanup_containers,  # noqa: F811
                                                       json_lines):
    before = scrape(client)
    session = services.session_create(user=owner, exposure="external", pack=local_pack)

    s = scrape(client)
    assert s[("medforge_sessions", (("state", "starting"),))] == 1
    assert s[("medforge_gpus", (("state", "in_use"),))] == 1

    lifecycle.session_start_run(session_id=str(session.pk))
    s = scrape(client)
    data = status(client)
    assert s[("medforge_sessions", (("state", "running"),))] == 1
    assert data["sessions"]["running"] == 1 and data["gpus"]["in_use"] == 1
    assert data["gpus"]["free"] == 3
    started = (s[("medforge_session_start_duration_seconds_count", ())]
               - before.get(("medforge_session_start_duration_seconds_count", ()), 0))
    assert started == 1

    session.refresh_from_db()
    services.session_request_stop(session=session, by=owner)
    assert status(client)["sessions"]["stopping"] == 1
    lifecycle.session_stop_run(session_id=str(session.pk))
    s = scrape(client)
    data = status(client)
    assert s[("medforge_sessions", (("state", "stopped"),))] == 1
    assert s[("medforge_sessions", (("state", "running"),))] == 0
    assert data["gpus"]["in_use"] == 0 and data["gpus"]["free"] == 4

    # Every lifecycle line of this session carries its ids, and parses as JSON.
    lines = [x for x in json_lines() if x.get("session_id") == str(session.pk)]
    events = {x["event"] for x in lines}
    assert {"session.created", "session.running", "session.stopped"} <= events, events
    for line in lines:
        if line["event"] in ("session.created", "session.running", "session.stopped"):
            assert line["slug"] == session.slug, line
            assert str(line.get("user_id")) == str(owner.pk), line
