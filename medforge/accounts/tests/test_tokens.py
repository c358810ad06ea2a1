"""Personal API tokens: shown once, stored hashed, revoked or rotated away at once."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from medforge.accounts.models import ApiToken
from medforge.accounts.tokens import hash_secret
from testkit.api import assert_envelope, assert_problem
from testkit.cast import make_client

pytestmark = pytest.mark.django_db


def bearer(secret):
    return make_client(origin=None), {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def test_create_shows_secret_once_and_stores_only_its_hash(client_for, owner):
    client = client_for(owner)
    created = assert_envelope(client.post("/api/v2/me/tokens", {"name": "laptop"}, format="json"),
                              201)
    secret = created["secret"]
    assert secret.startswith("mf_") and len(secret) > 40
    row = ApiToken.objects.get(pk=created["id"])
    assert row.token_hash == hash_secret(secret)
    assert secret not in str(row.__dict__)
    listed = assert_envelope(client.get("/api/v2/me/tokens"))
    assert listed[0]["name"] == "laptop" and "secret" not in listed[0]
    anon, headers = bearer(secret)
    me = assert_envelope(anon.get("/api/v2/me", **headers))
    assert me["id"] == owner.pk
    row.refresh_from_db()
    assert row.last_used_at is not None


def test_revoked_token_is_refused_at_once(client_for, owner):
    client = client_for(owner)
    created = client.post("/api/v2/me/tokens", {"name": "ci"}, format="json").json()["data"]
    anon, headers = bearer(created["secret"])
    assert anon.get("/api/v2/me", **headers).status_code == 200
    revoked = assert_envelope(client.delete(f"/api/v2/me/tokens/{created['id']}"))
    assert revoked["active"] is False and revoked["revoked_at"]
    assert_problem(anon.get("/api/v2/me", **headers), 401, "invalid_token")


def test_rotate_issues_new_secret_and_kills_the_old(client_for, owner):
    client = client_for(owner)
    created = client.post("/api/v2/me/tokens", {"name": "ci"}, format="json").json()["data"]
    rotated = assert_envelope(client.post(f"/api/v2/me/tokens/{created['id']}/rotate"), 201)
    assert rotated["secret"] != created["secret"] and rotated["name"] == "ci"
    old, h_old = bearer(created["secret"])
    assert_problem(old.get("/api/v2/me", **h_old), 401, "invalid_token")
    new, h_new = bearer(rotated["secret"])
    assert new.get("/api/v2/me", **h_new).status_code == 200
    # A revoked token cannot be rotated back to life.
    assert_problem(client.post(f"/api/v2/me/tokens/{created['id']}/rotate"), 404,
                   "token_not_found")


def test_expired_and_malformed_tokens_are_refused(client_for, owner):
    client = client_for(owner)
    future = (timezone.now() + timedelta(hours=1)).isoformat()
    created = client.post("/api/v2/me/tokens", {"name": "short", "expires_at": future},
                          format="json").json()["data"]
    ApiToken.objects.filter(pk=created["id"]).update(expires_at=timezone.now() - timedelta(1))
    anon, headers = bearer(created["secret"])
    assert_problem(anon.get("/api/v2/me", **headers), 401, "invalid_token")
    assert_problem(anon.get("/api/v2/me", HTTP_AUTHORIZATION="Bearer mf_nope"), 401,
                   "invalid_token")
    assert_problem(anon.get("/api/v2/me", HTTP_AUTHORIZATION="Basic Zm9vOmJhcg=="), 401,
                   "invalid_token")
    past = (timezone.now() - timedelta(hours=1)).isoformat()
    assert_problem(client.post("/api/v2/me/tokens", {"name": "old", "expires_at": past},
                               format="json"), 422, "validation_error")


def test_tokens_of_others_are_invisible(client_for, owner, stranger):
    created = client_for(owner).post("/api/v2/me/tokens", {"name": "mine"},
                                     format="json").json()["data"]
    other = client_for(stranger)
    assert_problem(other.delete(f"/api/v2/me/tokens/{created['id']}"), 404, "token_not_found")
    assert assert_envelope(other.get("/api/v2/me/tokens")) == []
    assert ApiToken.objects.get(pk=created["id"]).revoked_at is None
