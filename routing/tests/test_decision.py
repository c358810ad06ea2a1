"""The forward-auth decision through the full Django stack (no Caddy, no container): SPEC §5's
order, both credential kinds, and that every state change is seen by the very next request
while a warm request touches no database."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from medforge.accounts import services as account_services
from medforge.accounts.factories import UserFactory
from routing import cache as fa_cache
from sessions_app.hooks import session_changed_on_commit
from sessions_app.models import Session
from testkit.api import assert_problem, schema_validator

from .conftest import PATH, UPSTREAM, host_for, session_cookie

pytestmark = [pytest.mark.django_db, pytest.mark.mariadb]


def assert_allowed(resp, upstream: str = UPSTREAM) -> None:
    assert resp.status_code == 200, (resp.status_code, resp.content[:300])
    assert resp["X-Upstream"] == upstream
    assert resp.content == b""
    assert resp["X-Request-Id"]


def assert_refused(resp, status: int, code: str) -> dict:
    body = assert_problem(resp, status, code)
    assert "X-Upstream" not in resp
    schema_validator().validate("GET", PATH, resp)
    return body


def test_no_credentials_is_401(caller, owner, make_session):
    s = make_session(owner)
    resp = caller.ask(host_for(s.slug))
    assert_refused(resp, 401, "not_authenticated")
    assert resp["WWW-Authenticate"].startswith("Bearer")


def test_unknown_cookie_is_401_and_stays_401(caller, owner, make_session):
    s = make_session(owner)
    for _ in range(2):  # the second answer comes from the negative cache: still a refusal
        assert_refused(caller.ask(host_for(s.slug), cookie="x" * 32), 401, "not_authenticated")


def test_owner_admin_and_stranger(caller, owner, stranger, admin, make_session):
    s = make_session(owner)
    assert_allowed(caller.ask(host_for(s.slug), cookie=session_cookie(owner)))
    assert_allowed(caller.ask(host_for(s.slug), cookie=session_cookie(admin)))
    assert_refused(caller.ask(host_for(s.slug), cookie=session_cookie(stranger)),
                   403, "permission_denied")


def test_internal_host_needs_entitlement_even_for_the_owner(caller, owner, entitled,
                                                             make_session):
    mine = make_session(owner, exposure="internal")
    theirs = make_session(entitled, exposure="internal")
    assert_refused(caller.ask(host_for(mine.slug, "internal"), cookie=session_cookie(owner)),
                   403, "internal_access_required")
    assert_allowed(caller.ask(host_for(theirs.slug, "internal"), cookie=session_cookie(entitled)))
    # Entitled but not the owner: still refused (step 6 after step 5).
    other = make_session(UserFactory(can_use_internal=True), exposure="internal")
    assert_refused(caller.ask(host_for(other.slug, "internal"), cookie=session_cookie(entitled)),
                   403, "permission_denied")


def test_other_exposure_host_is_404_before_entitlement(caller, owner, make_session):
    s = make_session(owner, exposure="external")
    # The internal name of an external session: 404 (step 4), not 403 (step 5).
    assert_refused(caller.ask(host_for(s.slug, "internal"), cookie=session_cookie(owner)),
                   404, "session_not_found")


@pytest.mark.parametrize("host", [
    "medforge.localhost", "api.medforge.localhost", "s-abcdefgh.medforge.localhost",
    "s-abcdefgh.other.medforge.localhost", "s-ABCDEFGH1.external.medforge.localhost",
    "s-abcdefg.external.medforge.localhost", "x-abcdefgh.external.medforge.localhost",
    "s-abcdefgh.external.medforge.localhost.evil.org", "s-abcdefgh.external.evil.org",
    "", "s-" + "a" * 300 + ".external.medforge.localhost",
])
def test_not_a_session_host_is_404(caller, owner, host):
    assert_refused(caller.ask(host, cookie=session_cookie(owner)), 404, "not_found")


def test_unknown_slug_and_sessions_not_running_are_404(caller, owner, make_session):
    cookie = session_cookie(owner)
    assert_refused(caller.ask(host_for("zzzzzzzz"), cookie=cookie), 404, "session_not_found")
    for status in ("starting", "stopping", "stopped", "error"):
        s = make_session(owner, status=status)
        assert_refused(caller.ask(host_for(s.slug), cookie=cookie), 404, "session_not_found")


def test_host_port_and_case_are_accepted(caller, owner, make_session):
    s = make_session(owner)
    host = host_for(s.slug).upper() + ":8000"
    assert_allowed(caller.ask(host, cookie=session_cookie(owner)))


def test_client_sent_upstream_headers_never_influence_the_answer(caller, owner, stranger,
                                                                 make_session):
    s = make_session(owner)
    spoof = {"HTTP_X_UPSTREAM": "10.9.9.9:22", "HTTP_X_MEDFORGE_UPSTREAM": "10.9.9.9:22",
             "HTTP_X_USER_ID": str(owner.pk), "HTTP_X_FORWARDED_HOST": host_for(s.slug)}
    assert_allowed(caller.ask(host_for(s.slug), cookie=session_cookie(owner), **spoof))
    assert_refused(caller.ask(host_for(s.slug), cookie=session_cookie(stranger), **spoof),
                   403, "permission_denied")
    assert_refused(caller.ask("medforge.localhost", cookie=session_cookie(owner), **spoof),
                   404, "not_found")


# --- tokens -------------------------------------------------------------------------------------

def test_bearer_token_opens_the_owners_session(caller, owner, stranger, make_session):
    s = make_session(owner)
    _, secret = account_services.token_create(user=owner, name="cli")
    assert_allowed(caller.ask(host_for(s.slug), token=secret))
    _, other = account_services.token_create(user=stranger, name="cli")
    assert_refused(caller.ask(host_for(s.slug), token=other), 403, "permission_denied")
    assert_refused(caller.ask(host_for(s.slug), token="mf_" + "x" * 43), 401,
                   "not_authenticated")


def test_foreign_authorization_does_not_hide_a_valid_cookie(caller, owner, make_session):
    s = make_session(owner)
    resp = caller.ask(host_for(s.slug), cookie=session_cookie(owner),
                      HTTP_AUTHORIZATION="Bearer something-the-ide-uses")
    assert_allowed(resp)


def test_revoked_token_stops_at_once(caller, owner, make_session,
                                     django_capture_on_commit_callbacks):
    s = make_session(owner)
    token, secret = account_services.token_create(user=owner, name="cli")
    assert_allowed(caller.ask(host_for(s.slug), token=secret))
    assert_allowed(caller.ask(host_for(s.slug), token=secret))  # now warm
    with django_capture_on_commit_callbacks(execute=True):
        account_services.token_revoke(token=token, by=owner)
    assert_refused(caller.ask(host_for(s.slug), token=secret), 401, "not_authenticated")


def test_expired_token_is_refused_even_when_cached(caller, owner, make_session, monkeypatch):
    import time
    from types import SimpleNamespace

    from routing import decision

    s = make_session(owner)
    _, secret = account_services.token_create(
        user=owner, name="short", expires_at=timezone.now() + timedelta(hours=1))
    assert_allowed(caller.ask(host_for(s.slug), token=secret))
    assert_allowed(caller.ask(host_for(s.slug), token=secret))  # warm in both cache levels
    later = time.time() + 2 * 3600
    monkeypatch.setattr(decision, "time", SimpleNamespace(time=lambda: later))
    assert_refused(caller.ask(host_for(s.slug), token=secret), 401, "invalid_token")


# --- invalidation: every change is seen by the next request --------------------------------------

def test_logout_stops_the_cookie_at_once(owner, make_session, caller):
    from testkit.cast import make_client

    s = make_session(owner)
    api = make_client(owner)
    cookie = api.cookies[settings.SESSION_COOKIE_NAME].value
    assert_allowed(caller.ask(host_for(s.slug), cookie=cookie))
    assert api.post("/api/v2/auth/logout").status_code in (200, 204)
    assert_refused(caller.ask(host_for(s.slug), cookie=cookie), 401, "not_authenticated")


def test_admin_demotion_applies_at_once(caller, owner, admin, make_session,
                                        django_capture_on_commit_callbacks):
    s = make_session(owner)
    cookie = session_cookie(admin)
    assert_allowed(caller.ask(host_for(s.slug), cookie=cookie))
    with django_capture_on_commit_callbacks(execute=True):
        account_services.admin_user_update(actor=admin, user=admin, data={"is_staff": False})
    assert_refused(caller.ask(host_for(s.slug), cookie=cookie), 403, "permission_denied")


def test_entitlement_removal_applies_at_once(caller, admin, entitled, make_session,
                                             django_capture_on_commit_callbacks):
    s = make_session(entitled, exposure="internal")
    cookie = session_cookie(entitled)
    assert_allowed(caller.ask(host_for(s.slug, "internal"), cookie=cookie))
    with django_capture_on_commit_callbacks(execute=True):
        account_services.admin_user_update(actor=admin, user=entitled,
                                           data={"can_use_internal": False})
    assert_refused(caller.ask(host_for(s.slug, "internal"), cookie=cookie),
                   403, "internal_access_required")


def test_deactivation_and_reactivation_apply_at_once(caller, admin, owner, make_session,
                                                     django_capture_on_commit_callbacks):
    s = make_session(owner)
    cookie = session_cookie(owner)
    _, secret = account_services.token_create(user=owner, name="cli")
    assert_allowed(caller.ask(host_for(s.slug), cookie=cookie))
    assert_allowed(caller.ask(host_for(s.slug), token=secret))
    with django_capture_on_commit_callbacks(execute=True):
        account_services.admin_user_update(actor=admin, user=owner, data={"is_active": False})
    assert_refused(caller.ask(host_for(s.slug), cookie=cookie), 401, "not_authenticated")
    assert_refused(caller.ask(host_for(s.slug), token=secret), 401, "not_authenticated")
    with django_capture_on_commit_callbacks(execute=True):
        account_services.admin_user_update(actor=admin, user=owner, data={"is_active": True})
    assert_allowed(caller.ask(host_for(s.slug), token=secret))


def test_password_change_ends_other_cookies_but_not_the_changing_one(
        owner, password, make_session, caller, django_capture_on_commit_callbacks):
    from testkit.cast import make_client

    s = make_session(owner)
    other_cookie = session_cookie(owner)
    api = make_client(owner)
    own_cookie = api.cookies[settings.SESSION_COOKIE_NAME].value
    assert_allowed(caller.ask(host_for(s.slug), cookie=other_cookie))
    assert_allowed(caller.ask(host_for(s.slug), cookie=own_cookie))
    with django_capture_on_commit_callbacks(execute=True):
        resp = api.patch("/api/v2/me", {"password": "another-long-passphrase-42",
                                        "current_password": password}, format="json")
    assert resp.status_code == 200, resp.content
    own_cookie = api.cookies[settings.SESSION_COOKIE_NAME].value
    assert_refused(caller.ask(host_for(s.slug), cookie=other_cookie), 401, "not_authenticated")
    assert_allowed(caller.ask(host_for(s.slug), cookie=own_cookie))


def test_session_state_changes_apply_at_once(caller, owner, make_session,
                                             django_capture_on_commit_callbacks):
    s = make_session(owner)
    cookie = session_cookie(owner)
    assert_allowed(caller.ask(host_for(s.slug), cookie=cookie))
    # The upstream drifted (reconcile normalises it): the next request goes to the new one.
    with django_capture_on_commit_callbacks(execute=True):
        Session.objects.filter(pk=s.pk).update(upstream="127.0.0.1:18081")
        session_changed_on_commit(s.slug)
    assert_allowed(caller.ask(host_for(s.slug), cookie=cookie), "127.0.0.1:18081")
    with django_capture_on_commit_callbacks(execute=True):
        Session.objects.filter(pk=s.pk).update(status="stopping")
        session_changed_on_commit(s.slug)
    assert_refused(caller.ask(host_for(s.slug), cookie=cookie), 404, "session_not_found")


def test_a_session_that_becomes_running_is_reachable_at_once(
        caller, owner, make_session, django_capture_on_commit_callbacks):
    s = make_session(owner, status="starting")
    cookie = session_cookie(owner)
    assert_refused(caller.ask(host_for(s.slug), cookie=cookie), 404, "session_not_found")
    with django_capture_on_commit_callbacks(execute=True):
        Session.objects.filter(pk=s.pk).update(status="running", upstream=UPSTREAM)
        session_changed_on_commit(s.slug)
    assert_allowed(caller.ask(host_for(s.slug), cookie=cookie))


# --- the warm path -------------------------------------------------------------------------------

@pytest.mark.parametrize("credential", ["cookie", "token"])
def test_warm_path_runs_no_query(caller, owner, make_session, credential):
    s = make_session(owner)
    if credential == "cookie":
        kwargs = {"cookie": session_cookie(owner)}
    else:
        kwargs = {"token": account_services.token_create(user=owner, name="cli")[1]}
    assert_allowed(caller.ask(host_for(s.slug), **kwargs))  # cold: fills the cache
    with CaptureQueriesContext(connection) as queries:
        for _ in range(3):
            assert_allowed(caller.ask(host_for(s.slug), **kwargs))
    assert len(queries) == 0, [q["sql"] for q in queries]


def test_warm_refusals_run_no_query(caller, owner, stranger, make_session):
    s = make_session(owner)
    cookie = session_cookie(stranger)
    caller.ask(host_for(s.slug), cookie=cookie)
    caller.ask(host_for("zzzzzzzz"), cookie=cookie)
    with CaptureQueriesContext(connection) as queries:
        assert_refused(caller.ask(host_for(s.slug), cookie=cookie), 403, "permission_denied")
        assert_refused(caller.ask(host_for("zzzzzzzz"), cookie=cookie), 404, "session_not_found")
        assert_refused(caller.ask(host_for(s.slug)), 401, "not_authenticated")
    assert len(queries) == 0, [q["sql"] for q in queries]


def _l1_ready(timeout_s: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while fa_cache.current_epoch() is None:
        assert time.monotonic() < deadline, "the invalidation listener never subscribed"
        time.sleep(0.02)


def test_warm_path_makes_no_round_trip_to_the_shared_cache(caller, owner, make_session,
                                                          monkeypatch):
    s = make_session(owner)
    cookie = session_cookie(owner)
    _l1_ready()
    assert_allowed(caller.ask(host_for(s.slug), cookie=cookie))
    backend = fa_cache.backend()
    reads: list = []
    for name in ("get", "get_many"):
        real = getattr(backend, name)
        monkeypatch.setattr(backend, name,
                            lambda *a, _real=real, **k: reads.append(a) or _real(*a, **k))
    assert_allowed(caller.ask(host_for(s.slug), cookie=cookie))
    assert reads == []


def test_an_invalidation_from_another_process_reaches_this_ones_copy(caller, owner, stranger,
                                                                    make_session):
    """A real second process runs the hook (it only reaches Redis): this process's warm copy
    stops answering from the old state as soon as the message arrives."""
    import subprocess
    import sys
    import time

    s = make_session(owner)
    cookie = session_cookie(owner)
    _l1_ready()
    assert_allowed(caller.ask(host_for(s.slug), cookie=cookie))
    Session.objects.filter(pk=s.pk).update(owner=stranger)
    # Without the message this process would keep answering from its copy.
    assert_allowed(caller.ask(host_for(s.slug), cookie=cookie))
    code = ("import django; django.setup(); from sessions_app.hooks import session_changed; "
            f"session_changed({s.slug!r})")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={**__import__("os").environ,
                                            "DJANGO_SETTINGS_MODULE": "medforge.settings"})
    assert done.returncode == 0, done.stderr[-2000:]
    deadline = time.monotonic() + 5
    while True:
        resp = caller.ask(host_for(s.slug), cookie=cookie)
        if resp.status_code == 403 or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert_refused(resp, 403, "permission_denied")


def test_decisions_are_counted_by_status_and_cache_path(caller, owner, make_session):
    from medforge.ops.metrics import FORWARD_AUTH_DECISIONS

    def count(status, path):
        return FORWARD_AUTH_DECISIONS.labels(status=status, path=path)._value.get()

    s = make_session(owner)
    cookie = session_cookie(owner)
    before = (count("200", "miss"), count("200", "hit"), count("401", "hit"))
    caller.ask(host_for(s.slug), cookie=cookie)
    caller.ask(host_for(s.slug), cookie=cookie)
    caller.ask(host_for(s.slug))
    after = (count("200", "miss"), count("200", "hit"), count("401", "hit"))
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 1]


# --- the routed view (documented in the schema) gives the same answers ---------------------------

def test_endpoint_is_documented_and_the_routed_view_agrees(caller, owner, stranger,
                                                           make_session, settings):
    schema = schema_validator().schema
    op = schema["paths"][PATH]["get"]
    assert {"200", "401", "403", "404"} <= set(op["responses"])
    s = make_session(owner)
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if not m.startswith("routing.")]
    assert_allowed(caller.ask(host_for(s.slug), cookie=session_cookie(owner)))
    assert_refused(caller.ask(host_for(s.slug), cookie=session_cookie(stranger)),
                   403, "permission_denied")
    assert_refused(caller.ask(host_for(s.slug)), 401, "not_authenticated")


def test_other_methods_are_not_decisions(owner, make_session):
    from testkit.cast import make_client

    s = make_session(owner)
    resp = make_client(owner).post(PATH, HTTP_HOST=host_for(s.slug))
    assert_problem(resp, 405, "method_not_allowed")
