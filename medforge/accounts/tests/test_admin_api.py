"""Admin API: list users, change role/entitlement/limit; every change audited."""
from __future__ import annotations

import pytest

from medforge.accounts.models import AuditLog
from testkit.api import assert_envelope, assert_problem

pytestmark = pytest.mark.django_db


def test_non_admin_is_refused(client_for, owner):
    assert_problem(client_for(owner).get("/api/v2/admin/users"), 403, "admin_required")
    assert_problem(client_for(owner).patch(f"/api/v2/admin/users/{owner.pk}",
                                           {"is_admin": True}, format="json"),
                   403, "admin_required")


def test_admin_lists_and_updates_users_with_audit(client_for, admin, owner):
    client = client_for(admin)
    users = assert_envelope(client.get("/api/v2/admin/users"))
    row = next(u for u in users if u["id"] == owner.pk)
    assert row["active_sessions"] == 0
    data = assert_envelope(client.patch(
        f"/api/v2/admin/users/{owner.pk}",
        {"can_use_internal": True, "max_concurrent_sessions": 3}, format="json"))
    assert data["can_use_internal"] is True and data["max_concurrent_sessions"] == 3
    entry = AuditLog.objects.get(action="admin.user_updated", target_id=str(owner.pk))
    assert entry.actor == admin
    assert entry.data == {"can_use_internal": [False, True], "max_concurrent_sessions": [1, 3]}
    audit = assert_envelope(client.get("/api/v2/admin/audit", {"action": "admin.user_updated"}))
    assert audit[0]["actor"] == "admin"


@pytest.mark.parametrize("limit", [0, 9, "many"])
def test_session_limit_bounds(client_for, admin, owner, limit):
    resp = client_for(admin).patch(f"/api/v2/admin/users/{owner.pk}",
                                   {"max_concurrent_sessions": limit}, format="json")
    assert_problem(resp, 422, "validation_error")
    owner.refresh_from_db()
    assert owner.max_concurrent_sessions == 1


def test_unknown_user_is_404(client_for, admin):
    assert_problem(client_for(admin).get("/api/v2/admin/users/999999"), 404, "user_not_found")
