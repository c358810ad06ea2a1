"""Changes made through django-admin (the operator console) reach forward auth at once, like
the same changes made through the API: role changes together with other fields, passwords set
by an operator, admin logout, deleted tokens and users."""
from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client

from medforge.accounts import services as account_services
from medforge.accounts.models import ApiToken, AuditLog, User

from .conftest import host_for, session_cookie
from .test_decision import assert_allowed, assert_refused

pytestmark = [pytest.mark.django_db, pytest.mark.mariadb]


def console(user) -> Client:
    client = Client(HTTP_ORIGIN=f"http://{settings.BASE_DOMAIN}")
    client.force_login(user)
    return client


def change_form(user, **over) -> dict:
    data = {
        "email": user.email, "handle": user.handle, "display_name": user.display_name,
        "is_staff": "on" if user.is_staff else "", "is_superuser": "on" if user.is_superuser else "",
        "can_use_internal": "on" if user.can_use_internal else "",
        "max_concurrent_sessions": user.max_concurrent_sessions,
        "is_active": "on" if user.is_active else "",
    }
    data.update(over)
    return {k: v for k, v in data.items() if v != ""}


def test_role_change_with_another_field_is_audited_and_applies_at_once(
        caller, owner, admin, make_session, django_capture_on_commit_callbacks):
    demoted = User.objects.create_user(email="ops@example.org", password="x-long-pass-123",
                                       handle="ops", is_staff=True)
    s = make_session(owner)
    cookie = session_cookie(demoted)
    assert_allowed(caller.ask(host_for(s.slug), cookie=cookie))
    with django_capture_on_commit_callbacks(execute=True):
        resp = console(admin).post(f"/admin/accounts/user/{demoted.pk}/change/",
                                   change_form(demoted, handle="ops-renamed", is_staff=""))
    assert resp.status_code == 302, resp.content[:2000]
    demoted.refresh_from_db()
    assert (demoted.handle, demoted.is_staff) == ("ops-renamed", False)
    entry = AuditLog.objects.get(action="admin.user_updated", target_id=str(demoted.pk))
    assert entry.data == {"is_staff": [True, False]}
    assert_refused(caller.ask(host_for(s.slug), cookie=cookie), 403, "permission_denied")


def test_password_set_by_an_operator_ends_other_cookies_at_once(
        caller, owner, admin, make_session, django_capture_on_commit_callbacks):
    s = make_session(owner)
    cookie = session_cookie(owner)
    assert_allowed(caller.ask(host_for(s.slug), cookie=cookie))
    new = "an-operator-chosen-passphrase-7"
    with django_capture_on_commit_callbacks(execute=True):
        resp = console(admin).post(f"/admin/accounts/user/{owner.pk}/password/",
                                   {"password1": new, "password2": new,
                                    "usable_password": "true"})
    assert resp.status_code == 302, resp.content[:2000]
    assert AuditLog.objects.filter(action="admin.password_set", target_id=str(owner.pk)).exists()
    assert_refused(caller.ask(host_for(s.slug), cookie=cookie), 401, "not_authenticated")


def test_admin_logout_ends_the_cookie_at_once(caller, owner, admin, make_session):
    s = make_session(owner)
    client = console(admin)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert_allowed(caller.ask(host_for(s.slug), cookie=cookie))
    assert client.post("/admin/logout/").status_code == 200
    assert_refused(caller.ask(host_for(s.slug), cookie=cookie), 401, "not_authenticated")


def test_deleted_token_and_deleted_user_stop_at_once(
        caller, admin, make_session, django_capture_on_commit_callbacks):
    owner = User.objects.create_user(email="gone@example.org", password="x-long-pass-123",
                                     handle="gone")
    s = make_session(owner)
    token, secret = account_services.token_create(user=owner, name="cli")
    cookie = session_cookie(owner)
    assert_allowed(caller.ask(host_for(s.slug), token=secret))
    assert_allowed(caller.ask(host_for(s.slug), cookie=cookie))
    with django_capture_on_commit_callbacks(execute=True):
        resp = console(admin).post(f"/admin/accounts/apitoken/{token.pk}/delete/",
                                   {"post": "yes"})
    assert resp.status_code == 302, resp.content[:2000]
    assert not ApiToken.objects.filter(pk=token.pk).exists()
    assert_refused(caller.ask(host_for(s.slug), token=secret), 401, "not_authenticated")
    assert_allowed(caller.ask(host_for(s.slug), cookie=cookie))
    s.delete()
    with django_capture_on_commit_callbacks(execute=True):
        resp = console(admin).post(f"/admin/accounts/user/{owner.pk}/delete/", {"post": "yes"})
    assert resp.status_code == 302, resp.content[:2000]
    assert not User.objects.filter(pk=owner.pk).exists()
    assert_refused(caller.ask(host_for(s.slug), cookie=cookie), 401, "not_authenticated")
