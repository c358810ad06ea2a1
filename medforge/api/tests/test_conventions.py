"""SPEC §2: envelope, request ids, problem+json for every failure, pagination, schema."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from medforge.accounts import services
from medforge.accounts.api import MeView
from testkit.api import assert_envelope, assert_problem, schema_validator

pytestmark = pytest.mark.django_db


def test_success_envelope_and_generated_request_id(client_for, owner):
    resp = client_for(owner).get("/api/v2/me")
    data = assert_envelope(resp)
    assert data["email"] == "owner@example.org"
    assert resp.json()["meta"]["limit"] is None and resp.json()["meta"]["has_more"] is None
    assert len(resp["X-Request-Id"]) == 36


def test_valid_client_request_id_is_kept_and_bad_one_replaced(client_for, owner):
    client = client_for(owner)
    kept = client.get("/api/v2/me", HTTP_X_REQUEST_ID="trace-1234abcd")
    assert kept["X-Request-Id"] == "trace-1234abcd"
    assert kept.json()["meta"]["request_id"] == "trace-1234abcd"
    replaced = client.get("/api/v2/me", HTTP_X_REQUEST_ID="<script>alert(1)</script>")
    assert replaced["X-Request-Id"] != "<script>alert(1)</script>"
    assert len(replaced["X-Request-Id"]) == 36


def test_unknown_route_and_wrong_method_are_problems(client_for, owner):
    client = client_for(owner)
    assert_problem(client.get("/api/v2/definitely/not/here"), 404, "not_found")
    assert_problem(client.get("/api/nothing"), 404, "not_found")
    body = assert_problem(client.delete("/api/v2/me"), 405, "method_not_allowed")
    assert "DELETE" in body["detail"]


def test_malformed_json_is_400_and_changes_nothing(client_for, owner):
    client = client_for(owner)
    resp = client.patch("/api/v2/me", data='{"display_name": ', content_type="application/json")
    assert_problem(resp, 400, "malformed_json")
    owner.refresh_from_db()
    assert owner.display_name != ""


def test_unknown_fields_and_wrong_types_are_422_with_field_errors(client_for, owner):
    client = client_for(owner)
    body = assert_problem(client.patch("/api/v2/me", {"nickname": "x"}, format="json"), 422,
                          "validation_error")
    assert body["errors"] == [{"field": "nickname", "message": "Unknown field.",
                               "code": "unknown_field"}]
    body = assert_problem(client.post("/api/v2/me/tokens", {"name": ["a"]}, format="json"), 422,
                          "validation_error")
    assert body["errors"][0]["field"] == "name"
    body = assert_problem(client.patch("/api/v2/me", [1, 2], format="json"), 422,
                          "validation_error")


def test_oversized_body_is_413(client_for, owner, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    resp = client_for(owner).patch(
        "/api/v2/me", data='{"display_name": "' + "x" * 5000 + '"}',
        content_type="application/json")
    assert_problem(resp, 413, "payload_too_large")


def test_forced_500_is_a_problem_without_stack_trace(client_for, owner, monkeypatch):
    def boom(self, request):
        raise RuntimeError("secret internals: /etc/passwd")

    monkeypatch.setattr(MeView, "get", boom)
    client = client_for(owner)
    client.raise_request_exception = False
    body = assert_problem(client.get("/api/v2/me"), 500, "internal_error")
    assert "secret internals" not in body["detail"]


def test_identity_headers_are_ignored(anon_client, owner):
    resp = anon_client.get("/api/v2/me", HTTP_X_USER_ID=str(owner.pk),
                           HTTP_X_REMOTE_USER=owner.email)
    assert_problem(resp, 401, "not_authenticated")


def test_cursor_pagination_walks_every_row_once(client_for, owner):
    for i in range(7):
        services.token_create(user=owner, name=f"t{i}")
    client = client_for(owner)
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        resp = client.get("/api/v2/me/tokens", params)
        body = resp.json()
        assert resp.status_code == 200
        assert body["meta"]["limit"] == 3
        seen += [t["name"] for t in body["data"]]
        pages += 1
        cursor = body["meta"]["next_cursor"]
        assert body["meta"]["has_more"] is (cursor is not None)
        if not cursor:
            break
    assert pages == 3
    assert sorted(seen) == [f"t{i}" for i in range(7)]
    assert len(set(seen)) == 7


@pytest.mark.parametrize("limit", ["0", "501", "-1", "ten", "1.5"])
def test_invalid_limit(client_for, owner, limit):
    assert_problem(client_for(owner).get("/api/v2/me/tokens", {"limit": limit}), 400,
                   "invalid_limit")


@pytest.mark.parametrize("cursor", ["garbage", "eyJrIjoib2Zmc2V0In0", "a:b:c"])
def test_invalid_cursor(client_for, owner, cursor):
    assert_problem(client_for(owner).get("/api/v2/me/tokens", {"cursor": cursor}), 400,
                   "invalid_cursor")


def test_schema_served_and_docs_page_has_no_cdn(anon_client):
    resp = anon_client.get("/api/v2/schema/", {"format": "json"})
    assert resp.status_code == 200
    schema = resp.json()
    assert schema["openapi"].startswith("3.")
    assert "/api/v2/me" in schema["paths"]
    docs = APIClient().get("/api/v2/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger" in html.lower()
    assert "cdn.jsdelivr" not in html and "unpkg.com" not in html


def test_real_responses_match_the_schema(client_for, owner, admin, anon_client):
    validator = schema_validator()
    client = client_for(owner)
    created = client.post("/api/v2/me/tokens", {"name": "ci"}, format="json")
    checks = [
        ("GET", "/api/v2/me", client.get("/api/v2/me")),
        ("PATCH", "/api/v2/me", client.patch("/api/v2/me", {"display_name": "O"}, format="json")),
        ("PATCH", "/api/v2/me", client.patch("/api/v2/me", {"bogus": 1}, format="json")),
        ("POST", "/api/v2/me/tokens", created),
        ("GET", "/api/v2/me/tokens", client.get("/api/v2/me/tokens")),
        ("GET", "/api/v2/me/tokens", client.get("/api/v2/me/tokens", {"limit": 0})),
        ("GET", "/api/v2/me", anon_client.get("/api/v2/me")),
        ("GET", "/api/v2/admin/users", client_for(admin).get("/api/v2/admin/users")),
        ("GET", "/api/v2/admin/users", client.get("/api/v2/admin/users")),
        ("POST", "/api/v2/auth/login",
         anon_client.post("/api/v2/auth/login", {"email": "x@y.z", "password": "n"},
                          format="json")),
    ]
    for method, path, resp in checks:
        validator.validate(method, path, resp)
