"""Sign-up, login, logout, /me, and the login throttles (SPEC §2-3)."""
from __future__ import annotations

import pytest

from medforge.accounts.models import AuditLog, User
from testkit.api import assert_envelope, assert_problem
from testkit.cast import make_client

pytestmark = pytest.mark.django_db
STRONG = "a-long-unusual-passphrase-42"


@pytest.fixture(autouse=True)
def _mid_window_clock(monkeypatch):
    """Rate limits count in fixed windows; a test whose requests straddle a window edge would
    see the count restart. The limiter's clock starts 30 s into a 15-minute window and runs
    at real speed from there."""
    import time
    from types import SimpleNamespace

    from medforge.api import ratelimit

    offset = (time.time() // 900 + 1) * 900 + 30 - time.time()
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(time=lambda: time.time() + offset))


def signup(client, **over):
    body = {"email": "New@Example.org", "password": STRONG, "handle": "newbie"} | over
    return client.post("/api/v2/auth/signup", body, format="json")


def test_signup_creates_account_and_signs_in():
    client = make_client()
    data = assert_envelope(signup(client), 201)
    assert data["email"] == "new@example.org" and data["handle"] == "newbie"
    assert data["can_use_internal"] is False and data["max_concurrent_sessions"] == 1
    assert "password" not in data
    me = assert_envelope(client.get("/api/v2/me"))
    assert me["id"] == data["id"]
    user = User.objects.get(pk=data["id"])
    assert user.password.startswith("argon2")
    assert AuditLog.objects.filter(action="user.signup", target_id=str(user.pk)).exists()


def test_signup_rejects_weak_password_duplicate_email_and_bad_handle(owner):
    client = make_client()
    body = assert_problem(signup(client, password="password"), 422, "validation_error")
    assert body["errors"][0]["field"] == "password"
    assert_problem(signup(client, email="OWNER@example.org", handle="other"), 409, "email_taken")
    assert_problem(signup(client, email="x@example.org", handle="owner"), 409, "handle_taken")
    body = assert_problem(signup(client, handle="Bad Handle!"), 422, "validation_error")
    assert body["errors"][0]["field"] == "handle"
    assert User.objects.count() == 1


def test_login_logout_roundtrip(owner, password):
    client = make_client()
    bad = client.post("/api/v2/auth/login", {"email": owner.email, "password": "nope"},
                      format="json")
    assert_problem(bad, 401, "invalid_credentials")
    ok = client.post("/api/v2/auth/login", {"email": "OWNER@example.org", "password": password},
                     format="json")
    assert assert_envelope(ok)["handle"] == "owner"
    assert client.get("/api/v2/me").status_code == 200
    assert client.post("/api/v2/auth/logout").status_code == 200
    assert_problem(client.get("/api/v2/me"), 401, "not_authenticated")


def test_eleventh_login_in_a_minute_is_429_with_retry_after(owner, password):
    client = make_client()
    for i in range(10):
        resp = client.post("/api/v2/auth/login", {"email": f"ghost{i}@example.org",
                                                  "password": "x"},
                           format="json", REMOTE_ADDR="203.0.113.9")
        assert resp.status_code == 401
    resp = client.post("/api/v2/auth/login", {"email": owner.email, "password": password},
                       format="json", REMOTE_ADDR="203.0.113.9")
    body = assert_problem(resp, 429, "rate_limited")
    assert 1 <= int(resp["Retry-After"]) <= 60
    assert body["retry_after"] == int(resp["Retry-After"])
    # Another address is not affected by the first one's flood.
    other = client.post("/api/v2/auth/login", {"email": owner.email, "password": password},
                        format="json", REMOTE_ADDR="203.0.113.10")
    assert other.status_code == 200


def test_rate_limit_keys_on_forwarded_address_only_behind_trusted_proxy(owner):
    client = make_client()
    # From the trusted edge (127.0.0.1) the client is the forwarded address...
    for i in range(10):
        resp = client.post("/api/v2/auth/login", {"email": f"a{i}@b.c", "password": "x"},
                           format="json", REMOTE_ADDR="127.0.0.1",
                           HTTP_X_FORWARDED_FOR=f"198.51.100.{i}")
        assert resp.status_code == 401
    # ...and an untrusted peer cannot dodge its limit by forging X-Forwarded-For.
    for i in range(10):
        client.post("/api/v2/auth/login", {"email": f"b{i}@b.c", "password": "x"},
                    format="json", REMOTE_ADDR="203.0.113.50", HTTP_X_FORWARDED_FOR=f"10.0.0.{i}")
    resp = client.post("/api/v2/auth/login", {"email": "c@b.c", "password": "x"}, format="json",
                       REMOTE_ADDR="203.0.113.50", HTTP_X_FORWARDED_FOR="10.9.9.9")
    assert_problem(resp, 429, "rate_limited")


def test_failed_logins_throttle_the_account_across_addresses(owner, password):
    client = make_client()
    for i in range(5):
        resp = client.post("/api/v2/auth/login", {"email": owner.email, "password": "wrong"},
                           format="json", REMOTE_ADDR=f"203.0.113.{i}")
        assert resp.status_code == 401
    resp = client.post("/api/v2/auth/login", {"email": owner.email, "password": password},
                       format="json", REMOTE_ADDR="203.0.113.99")
    assert_problem(resp, 429, "rate_limited")
    assert "Retry-After" in resp


def test_signup_is_rate_limited_per_address():
    client = make_client()
    for i in range(10):
        client.post(
            "/api/v2/auth/signup",
            {"email": f"u{i}@example.org", "password": STRONG, "handle": f"user{i:02d}"},
            format="json", REMOTE_ADDR="203.0.113.7")
        client.logout()
    resp = client.post("/api/v2/auth/signup",
                       {"email": "u99@example.org", "password": STRONG, "handle": "user99"},
                       format="json", REMOTE_ADDR="203.0.113.7")
    assert_problem(resp, 429, "rate_limited")
    assert not User.objects.filter(email="u99@example.org").exists()


def test_patch_me_and_password_change_needs_current_password(client_for, owner, password):
    client = client_for(owner)
    data = assert_envelope(client.patch("/api/v2/me", {"display_name": "Olive", "handle": "olive"},
                                        format="json"))
    assert data["display_name"] == "Olive" and data["handle"] == "olive"
    body = assert_problem(client.patch("/api/v2/me", {"password": STRONG}, format="json"), 422,
                          "validation_error")
    assert body["errors"][0]["field"] == "current_password"
    body = assert_problem(client.patch(
        "/api/v2/me", {"password": STRONG, "current_password": "wrong"}, format="json"), 422,
        "validation_error")
    owner.refresh_from_db()
    assert owner.check_password(password)
    assert_problem(client.patch("/api/v2/me", {"password": "123", "current_password": password},
                                format="json"), 422, "validation_error")
    ok = client.patch("/api/v2/me", {"password": STRONG, "current_password": password},
                      format="json")
    assert ok.status_code == 200
    owner.refresh_from_db()
    assert owner.check_password(STRONG)
    # The session that changed it stays signed in.
    assert client.get("/api/v2/me").status_code == 200
