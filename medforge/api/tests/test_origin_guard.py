"""SPEC §2: cookie-authenticated writes only from the platform's own hosts; CORS likewise."""
from __future__ import annotations

import pytest

from medforge.accounts import services
from testkit.api import assert_problem
from testkit.cast import make_client

pytestmark = pytest.mark.django_db

ALLOWED = [
    "http://medforge.localhost",
    "http://external.medforge.localhost",
    "http://internal.medforge.localhost",
    "http://api.medforge.localhost:8000",
    "https://medforge.localhost",
]
REFUSED = [
    "https://s-abcdefgh.external.medforge.localhost",
    "https://s-abcdefgh.internal.medforge.localhost",
    "https://evil.example.com",
    "https://medforge.localhost.evil.example.com",
    "http://localhost",
    "null",
]


@pytest.mark.parametrize("origin", ALLOWED)
def test_platform_origins_may_write(owner, origin):
    resp = make_client(owner, origin=origin).patch("/api/v2/me", {"display_name": origin},
                                                   format="json")
    assert resp.status_code == 200, resp.content
    owner.refresh_from_db()
    assert owner.display_name == origin


@pytest.mark.parametrize("origin", REFUSED)
def test_session_hosts_and_foreign_origins_are_refused(owner, origin):
    before = owner.display_name
    resp = make_client(owner, origin=origin).patch("/api/v2/me", {"display_name": "pwned"},
                                                   format="json")
    assert_problem(resp, 403, "origin_not_allowed")
    owner.refresh_from_db()
    assert owner.display_name == before


def test_referer_is_checked_when_origin_is_absent(owner):
    client = make_client(owner, origin=None)
    bad = client.patch("/api/v2/me", {"display_name": "x"}, format="json",
                       HTTP_REFERER="https://s-abcdefgh.external.medforge.localhost/page")
    assert_problem(bad, 403, "origin_not_allowed")
    good = client.patch("/api/v2/me", {"display_name": "x"}, format="json",
                        HTTP_REFERER="http://medforge.localhost/account")
    assert good.status_code == 200


def test_cookie_write_without_origin_or_referer_is_refused(owner):
    resp = make_client(owner, origin=None).patch("/api/v2/me", {"display_name": "x"},
                                                 format="json")
    assert_problem(resp, 403, "origin_not_allowed")


def test_bearer_token_writes_are_exempt(owner):
    _, secret = services.token_create(user=owner, name="cli")
    client = make_client(origin="https://s-abcdefgh.external.medforge.localhost")
    resp = client.patch("/api/v2/me", {"display_name": "from-cli"}, format="json",
                        HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert resp.status_code == 200


def test_cors_only_for_platform_origins(owner):
    client = make_client(owner, origin="http://external.medforge.localhost")
    ok = client.get("/api/v2/me")
    assert ok["access-control-allow-origin"] == "http://external.medforge.localhost"
    assert ok["access-control-allow-credentials"] == "true"
    session_host = make_client(owner, origin="http://s-abcdefgh.external.medforge.localhost")
    assert "access-control-allow-origin" not in session_host.get("/api/v2/me")
    foreign = make_client(owner, origin="https://evil.example.com")
    assert "access-control-allow-origin" not in foreign.get("/api/v2/me")
