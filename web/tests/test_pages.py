"""The web UI through Django's test client on MariaDB: every page a user reaches, the rules it
shows, and that bad input gets a clear, accessible error and changes nothing. (The browser
walk is in test_browser.py.)"""
from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from competitions import services as comp_services
from competitions.models import Competition, Submission
from medforge.accounts.factories import DEFAULT_PASSWORD, UserFactory
from medforge.accounts.models import ApiToken, AuditLog, User
from medforge.ops.flags import MAINTENANCE, set_flag
from sessions_app import dispatch
from sessions_app.factories import GPUFactory, PackFactory, SessionFactory
from sessions_app.models import GPU, Session, SessionEvent, Snapshot

from .conftest import EXTERNAL_HOST, HOLDOUT, INTERNAL_HOST, csv_bytes, make_competition

pytestmark = pytest.mark.django_db


def text(resp) -> str:
    return resp.content.decode()


@pytest.fixture
def queued(monkeypatch):
    """Records lifecycle tasks instead of sending them to a broker (no worker in these tests)."""
    sent: list[tuple[str, str]] = []
    dispatch.set_sender(lambda name, sid: sent.append((name, sid)))
    yield sent
    dispatch.set_sender(None)


@pytest.fixture
def pack(db):
    return PackFactory(slug="local-default", name="Local stand-in IDE", is_default=True)


# --- accounts -------------------------------------------------------------------------------


def test_signup_creates_the_account_signs_in_and_greets(browse):
    client = browse()
    resp = client.post("/signup/", {"email": "Ada@Example.org", "handle": "ada",
                                    "display_name": "Ada", "password": "a-long-enough-pass",
                                    "password_again": "a-long-enough-pass"})
    assert resp.status_code == 302 and resp["Location"] == "/"
    user = User.objects.get(handle="ada")
    assert user.email == "ada@example.org"
    page = text(client.get("/"))
    assert "Hello, Ada" in page and "@ada" in page


def test_signup_errors_are_announced_and_create_nothing(browse):
    resp = browse().post("/signup/", {"email": "bob@example.org", "handle": "Bob!",
                                      "password": "password", "password_again": "different"})
    assert resp.status_code == 422
    page = text(resp)
    assert 'role="alert"' in page
    # Each invalid field says so and points at its message.
    handle_input = re.search(r'<input[^>]*name="handle"[^>]*>', page).group(0)
    assert 'aria-invalid="true"' in handle_input
    assert 'aria-describedby="id_handle_help id_handle_error"' in handle_input
    assert 'id="id_handle_error"' in page
    assert "The two passwords differ." in page
    assert not User.objects.filter(email="bob@example.org").exists()


def test_signup_with_a_weak_password_or_taken_email_is_refused(browse, owner):
    resp = browse().post("/signup/", {"email": "new@example.org", "handle": "newbie",
                                      "password": "12345678", "password_again": "12345678"})
    assert resp.status_code == 422 and "too common" in text(resp)
    resp = browse().post("/signup/", {"email": owner.email.upper(), "handle": "other-one",
                                      "password": "a-long-enough-pass",
                                      "password_again": "a-long-enough-pass"})
    assert resp.status_code == 409
    assert "An account with this email exists." in text(resp)
    assert User.objects.count() == 1


def test_login_wrong_password_then_right_one_goes_to_next(browse, owner):
    client = browse()
    resp = client.post("/login/", {"email": owner.email, "password": "nope"})
    assert resp.status_code == 401 and "The email or password is wrong." in text(resp)
    resp = client.post("/login/?next=/account/", {"email": owner.email,
                                                   "password": DEFAULT_PASSWORD,
                                                   "next": "/account/"})
    assert resp.status_code == 302 and resp["Location"] == "/account/"
    # An open redirect is not followed.
    client.post("/logout/")
    resp = client.post("/login/", {"email": owner.email, "password": DEFAULT_PASSWORD,
                                   "next": "https://evil.example/"})
    assert resp["Location"] == "/"


@pytest.mark.parametrize(("target", "followed"), [
    ("http://s-abcdefgh.external.medforge.localhost:8000/lab?x=1", True),
    ("http://s-abcdefgh.internal.medforge.localhost/", True),
    ("http://s-abcdefgh.external.medforge.localhost.evil.example/", False),
    ("http://x-abcdefgh.external.medforge.localhost/", False),
    ("javascript:alert(1)", False),
])
def test_login_returns_to_the_ide_the_edge_sent_us_from(browse, owner, target, followed):
    resp = browse().post("/login/", {"email": owner.email, "password": DEFAULT_PASSWORD,
                                     "next": target})
    assert resp.status_code == 302
    assert resp["Location"] == (target if followed else "/")


def test_pages_need_sign_in_and_logout_needs_post(browse, owner):
    assert browse().get("/sessions/")["Location"].startswith("/login/?next=/sessions/")
    client = browse(owner)
    assert client.get("/logout/").status_code == 405
    assert client.post("/logout/").status_code == 302
    assert "Create an account" in text(client.get("/"))


def test_form_posts_without_csrf_token_are_refused(owner):
    client = Client(enforce_csrf_checks=True, HTTP_HOST=EXTERNAL_HOST,
                    HTTP_ORIGIN=f"http://{EXTERNAL_HOST}")
    client.force_login(owner)
    resp = client.post("/account/", {"form": "profile", "profile-email": owner.email,
                                     "profile-handle": "hijacked"})
    assert resp.status_code == 403
    owner.refresh_from_db()
    assert owner.handle == "owner"


def test_account_profile_and_password_change(browse, owner):
    client = browse(owner)
    resp = client.post("/account/", {"form": "profile", "profile-email": owner.email,
                                      "profile-handle": "Owner-Two", "profile-display_name": "O"})
    assert resp.status_code == 302
    owner.refresh_from_db()
    assert owner.handle == "owner-two"
    resp = client.post("/account/", {"form": "password", "pw-current_password": "wrong",
                                      "pw-password": "another-long-pass",
                                      "pw-password_again": "another-long-pass"})
    assert resp.status_code == 422 and "The current password is wrong." in text(resp)
    owner.refresh_from_db()
    assert owner.check_password(DEFAULT_PASSWORD)
    resp = client.post("/account/", {"form": "password", "pw-current_password": DEFAULT_PASSWORD,
                                      "pw-password": "another-long-pass",
                                      "pw-password_again": "another-long-pass"})
    assert resp.status_code == 302
    owner.refresh_from_db()
    assert owner.check_password("another-long-pass")
    # The browser that changed it stays signed in.
    assert client.get("/account/").status_code == 200


def test_handle_taken_is_shown_on_the_handle_field(browse, owner, stranger):
    resp = browse(owner).post("/account/", {"form": "profile", "profile-email": owner.email,
                                            "profile-handle": "stranger"})
    assert resp.status_code == 409
    assert 'id="id_profile-handle_error"' in text(resp)


def test_token_secret_shown_once_works_and_revoke_and_rotate(browse, owner):
    client = browse(owner)
    resp = client.post("/account/tokens/", {"name": "laptop", "expires_in": "30"})
    assert resp.status_code == 201 and resp["Cache-Control"] == "no-store"
    secret = re.search(r'value="(mf_[^"]+)"', text(resp)).group(1)
    assert secret not in text(client.get("/account/tokens/"))
    api = Client()
    assert api.get("/api/v2/me", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200
    token = ApiToken.objects.get(user=owner)
    resp = client.post(f"/account/tokens/{token.pk}/rotate")
    new_secret = re.search(r'value="(mf_[^"]+)"', text(resp)).group(1)
    assert new_secret != secret
    assert api.get("/api/v2/me", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 401
    assert api.get("/api/v2/me", HTTP_AUTHORIZATION=f"Bearer {new_secret}").status_code == 200
    new = ApiToken.objects.get(user=owner, revoked_at__isnull=True)
    assert client.post(f"/account/tokens/{new.pk}/revoke").status_code == 302
    assert api.get("/api/v2/me", HTTP_AUTHORIZATION=f"Bearer {new_secret}").status_code == 401


def test_someone_elses_token_cannot_be_revoked(browse, owner, stranger):
    token, _ = __import__("medforge.accounts.services", fromlist=["x"]).token_create(
        user=stranger, name="theirs")
    browse(owner).post(f"/account/tokens/{token.pk}/revoke")
    token.refresh_from_db()
    assert token.revoked_at is None


# --- surfaces -------------------------------------------------------------------------------


def test_internal_surface_is_for_entitled_users_only(browse, owner, entitled):
    resp = browse(owner, INTERNAL_HOST).get("/sessions/")
    assert resp.status_code == 403 and "Internal access required" in text(resp)
    resp = browse(entitled, INTERNAL_HOST).get("/sessions/")
    assert resp.status_code == 200 and "on the internal surface" in text(resp)
    # The entitled user is offered the switch; the others are not.
    assert "Internal surface" in text(browse(entitled).get("/"))
    assert "Internal surface" not in text(browse(owner).get("/"))


# --- sessions -------------------------------------------------------------------------------


def test_start_a_session_shows_it_starting_with_its_progress(browse, owner, pack, queued,
                                                             django_capture_on_commit_callbacks):
    GPUFactory(index=0)
    client = browse(owner)
    page = text(client.get("/sessions/"))
    assert "Local stand-in IDE (default)" in page
    with django_capture_on_commit_callbacks(execute=True):
        resp = client.post("/sessions/start", {"pack": pack.pk})
    session = Session.objects.get(owner=owner)
    assert resp["Location"] == f"/sessions/{session.pk}/"
    assert queued == [("start_session", str(session.pk))]
    page = text(client.get(resp["Location"]))
    assert "badge-starting" in page and f"data-poll-url=\"/sessions/{session.pk}/live\"" in page
    assert "Session requested on GPU 0" in page
    live = text(client.get(f"/sessions/{session.pk}/live"))
    assert "data-final" not in live  # still moving: the page keeps polling


def test_running_session_offers_the_ide_link_and_the_fragment_is_final(browse, owner, settings):
    settings.PUBLIC_PORT = 8443
    session = SessionFactory(owner=owner, status="running")
    SessionEvent.objects.create(session=session, kind="running", message="IDE is ready")
    live = text(browse(owner).get(f"/sessions/{session.pk}/live"))
    assert "data-final" in live and "IDE is ready" in live
    assert f'href="http://s-{session.slug}.external.{settings.BASE_DOMAIN}:8443/"' in live


@pytest.mark.parametrize("case, expected", [
    ("no_gpu", "All GPUs are busy right now"),
    ("limit", "your limit is 1"),
    ("maintenance", "The platform is in maintenance"),
])
def test_refused_starts_explain_why_and_create_nothing(browse, owner, pack, queued, case,
                                                       expected):
    if case == "no_gpu":
        GPUFactory(index=0, enabled=False)
    elif case == "limit":
        GPUFactory(index=0)
        GPUFactory(index=1)
        SessionFactory(owner=owner, gpu=GPU.objects.get(index=0), status="running")
    else:
        GPUFactory(index=0)
        set_flag(MAINTENANCE, True)
    before = Session.objects.count()
    resp = browse(owner).post("/sessions/start", {"pack": pack.pk}, follow=True)
    assert expected in text(resp)
    assert 'role="alert"' in text(resp)
    assert Session.objects.count() == before and queued == []


def test_stop_asks_for_confirmation_then_records_the_intent(browse, owner, queued,
                                                           django_capture_on_commit_callbacks):
    session = SessionFactory(owner=owner, status="running")
    client = browse(owner)
    confirm = client.get(f"/sessions/{session.pk}/stop")
    assert "Stop the session" in text(confirm)
    session.refresh_from_db()
    assert session.status == "running"  # GET changes nothing
    with django_capture_on_commit_callbacks(execute=True):
        resp = client.post(f"/sessions/{session.pk}/stop", follow=True)
    session.refresh_from_db()
    assert session.status == "stopping" and queued == [("stop_session", str(session.pk))]
    assert "Stopping s-" in text(resp)


def test_history_lists_stopped_sessions_with_their_snapshots(browse, owner):
    session = SessionFactory(owner=owner, status="stopped")
    Snapshot.objects.create(session=session, owner=owner, name="stop-1767225600000",
                            full_name=f"ws/{session.pk}@stop-1767225600000", kind="stop")
    page = text(browse(owner).get("/sessions/"))
    assert f"s-{session.slug}" in page and "stop-1767225600000" in page


def test_sessions_of_others_or_of_the_other_surface_are_not_found(browse, owner, stranger,
                                                                  entitled):
    theirs = SessionFactory(owner=stranger, status="running")
    assert browse(owner).get(f"/sessions/{theirs.pk}/").status_code == 404
    assert browse(owner).post(f"/sessions/{theirs.pk}/stop").status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "running"
    internal = SessionFactory(owner=entitled, status="running", exposure="internal")
    assert browse(entitled).get(f"/sessions/{internal.pk}/").status_code == 404
    assert browse(entitled, INTERNAL_HOST).get(f"/sessions/{internal.pk}/").status_code == 200


def test_restore_a_snapshot_starts_a_new_session(browse, owner, pack, queued):
    GPUFactory(index=0)
    old = SessionFactory(owner=owner, status="stopped", pack=pack, gpu=GPU.objects.get(index=0))
    snap = Snapshot.objects.create(session=old, owner=owner, name="stop-1",
                                   full_name=f"ws/{old.pk}@stop-1", kind="stop")
    resp = browse(owner).post(f"/snapshots/{snap.pk}/restore")
    new = Session.objects.exclude(pk=old.pk).get()
    assert resp["Location"] == f"/sessions/{new.pk}/" and new.restored_from_id == snap.pk


# --- competitions ---------------------------------------------------------------------------


def test_competition_detail_renders_description_rules_and_files(browse, owner, titanic):
    page = text(browse(owner).get(f"/competitions/{titanic.slug}/"))
    assert "<h1>Who survived?</h1>" in page
    assert "<script>alert" not in page
    assert "accuracy" in page and "3 valid submissions per UTC day" in page
    assert "public/test_ids.csv" in page and "public/sample_submission.csv" in page
    assert "manifest.json" not in page and "holdout" not in page
    assert titanic.title in text(browse(owner).get("/competitions/"))


def test_invalid_csv_shows_line_numbered_errors_and_is_not_counted(browse, owner, titanic):
    bad = b"PassengerId,Survived\n1,0\n2,7\n2,1\n"
    resp = browse(owner).post(f"/competitions/{titanic.slug}/submit",
                              {"file": SimpleUploadedFile("p.csv", bad, "text/csv")})
    assert resp.status_code == 422
    page = text(resp)
    assert 'data-testid="upload-errors"' in page and 'role="alert"' in page
    assert re.search(r"Line 3</span>.*Survived", page, re.DOTALL)
    assert "Line 4" in page  # the duplicate id
    assert Submission.objects.count() == 0
    assert re.search(r'data-testid="remaining-today"><strong>3<', page)


def test_oversized_upload_is_refused_before_it_is_stored(browse, owner, titanic, settings):
    settings.SUBMISSION_UPLOAD_MAX_BYTES = 2048
    big = b"PassengerId,Survived\n" + b"".join(b"%d,0\n" % i for i in range(100000))
    resp = browse(owner).post(f"/competitions/{titanic.slug}/submit",
                              {"file": SimpleUploadedFile("p.csv", big, "text/csv")})
    assert resp.status_code == 413
    assert "larger than the" in text(resp)
    assert Submission.objects.count() == 0
    assert re.search(r'data-testid="remaining-today"><strong>3<', text(resp))


def test_submit_form_still_needs_its_csrf_token(owner, titanic):
    client = Client(enforce_csrf_checks=True, HTTP_HOST=EXTERNAL_HOST,
                    HTTP_ORIGIN=f"http://{EXTERNAL_HOST}")
    client.force_login(owner)
    resp = client.post(f"/competitions/{titanic.slug}/submit",
                       {"file": SimpleUploadedFile("p.csv", csv_bytes(HOLDOUT), "text/csv")})
    assert resp.status_code == 403
    assert Submission.objects.count() == 0


def test_oversized_upload_with_csrf_enforced_gets_the_413_page(owner, titanic, settings):
    # A body far over the cap is not read at all, its CSRF token included: the browser must
    # still get the "too large" answer, not a CSRF failure.
    settings.SUBMISSION_UPLOAD_MAX_BYTES = 2048
    client = Client(enforce_csrf_checks=True, HTTP_HOST=EXTERNAL_HOST,
                    HTTP_ORIGIN=f"http://{EXTERNAL_HOST}")
    client.force_login(owner)
    form = text(client.get(f"/competitions/{titanic.slug}/submit"))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    big = b"PassengerId,Survived\n" + b"1,0\n" * 100_000
    resp = client.post(f"/competitions/{titanic.slug}/submit",
                       {"csrfmiddlewaretoken": token, "file": SimpleUploadedFile("p.csv", big, "text/csv")})
    assert resp.status_code == 413
    assert "larger than the" in text(resp)
    assert Submission.objects.count() == 0


def test_valid_csv_is_queued_then_scored_and_ranked(browse, owner, titanic, monkeypatch):
    from competitions import tasks

    monkeypatch.setattr(tasks.score_submission, "delay", lambda *a, **k: None)
    client = browse(owner)
    resp = client.post(f"/competitions/{titanic.slug}/submit",
                       {"file": SimpleUploadedFile("p.csv", csv_bytes(HOLDOUT), "text/csv"),
                        "description": "perfect"})
    assert resp["Location"] == f"/competitions/{titanic.slug}/submissions/"
    live = text(client.get(f"/competitions/{titanic.slug}/submissions/live"))
    assert "badge-queued" in live and "data-final" not in live
    sub = Submission.objects.get()
    comp_services.submission_score(submission_id=sub.pk)
    live = text(client.get(f"/competitions/{titanic.slug}/submissions/live"))
    assert "badge-scored" in live and "1.00000" in live and "data-final" in live
    board = text(client.get(f"/competitions/{titanic.slug}/leaderboard/"))
    assert re.search(r'rank">1</td><td>@owner</td>', board)
    assert "<svg class=\"chart\"" in board
    # a page far past the end is empty, not a database error
    for page_no in ("2", "100000000000000000000000"):
        resp = client.get(f"/competitions/{titanic.slug}/leaderboard/?page={page_no}")
        assert resp.status_code == 200 and not re.search(r'rank">1</td>', text(resp))


def test_internal_competitions_stay_on_the_internal_surface(browse, owner, entitled,
                                                           data_roots, settings):
    comp = make_competition(settings, slug="secret-challenge", exposure="internal",
                            title="Secret challenge")
    assert browse(entitled).get(f"/competitions/{comp.slug}/").status_code == 404
    assert "Secret challenge" not in text(browse(entitled).get("/competitions/"))
    assert browse(entitled, INTERNAL_HOST).get(f"/competitions/{comp.slug}/").status_code == 200
    assert browse(owner, INTERNAL_HOST).get("/competitions/").status_code == 403


def test_datasets_list_and_detail(browse, owner, titanic):
    assert titanic.dataset.title in text(browse(owner).get("/datasets/"))
    page = text(browse(owner).get(f"/datasets/{titanic.dataset.slug}/"))
    assert "<strong>Titanic</strong>" in page and "public/test_ids.csv" in page
    assert titanic.title in page
    # an INTERNAL competition wrongly put on this EXTERNAL dataset is not named here
    Competition.objects.create(slug="secret-challenge", title="Secret challenge", exposure="internal",
                               dataset=titanic.dataset, metric="accuracy")
    assert "Secret challenge" not in text(browse(owner).get(f"/datasets/{titanic.dataset.slug}/"))


# --- staff ----------------------------------------------------------------------------------


def test_staff_pages_are_for_admins(browse, owner, admin):
    for url in ("/staff/", "/staff/users/", "/staff/sessions/", "/staff/gpus/"):
        assert browse(owner).get(url).status_code == 403, url
        assert browse(admin).get(url).status_code == 200, url


def test_admin_disables_a_gpu_and_it_is_audited(browse, admin, owner):
    GPUFactory(index=0)
    resp = browse(admin).post("/staff/gpus/0", {"enabled": "0", "reason": "fan noise"},
                              follow=True)
    gpu = GPU.objects.get(index=0)
    assert not gpu.enabled and gpu.note == "fan noise"
    assert "GPU 0 is disabled" in text(resp)
    assert AuditLog.objects.filter(action="gpu.disable", actor=admin).exists()
    assert browse(owner).post("/staff/gpus/0", {"enabled": "1"}).status_code == 403
    assert not GPU.objects.get(index=0).enabled


def test_admin_changes_a_users_entitlement(browse, admin):
    user = UserFactory(handle="carol")
    browse(admin).post(f"/staff/users/{user.pk}", {
        f"u{user.pk}-can_use_internal": "on", f"u{user.pk}-max_concurrent_sessions": "3"})
    user.refresh_from_db()
    assert user.can_use_internal and user.max_concurrent_sessions == 3
    resp = browse(admin).post(f"/staff/users/{user.pk}", {
        f"u{user.pk}-max_concurrent_sessions": "99"}, follow=True)
    user.refresh_from_db()
    assert user.max_concurrent_sessions == 3 and "between 1 and 8" in text(resp)


def test_status_page_is_public(browse, admin):
    GPUFactory(index=0)
    page = text(browse().get("/status/"))
    assert "Platform status" in page and "free" in page
    assert "Users" not in page
    assert "Users" in text(browse(admin).get("/status/"))


def test_score_chart_is_an_accessible_step_line_up_to_now():
    from datetime import UTC, datetime

    from web.charts import step_chart

    svg = step_chart([(datetime(2026, 1, 2, tzinfo=UTC), 0.9), (datetime(2026, 1, 1, tzinfo=UTC), 0.8)],
                     title="Best accuracy", until=datetime(2026, 1, 3, tzinfo=UTC))
    assert svg.startswith('<svg class="chart"') and 'role="img"' in svg
    assert "2 leading scores, from 0.8 to 0.9" in svg  # sorted by time
    assert svg.count("<circle") == 2 and "2026-01-03 00:00" in svg
    assert step_chart([], title="x") == ""


def test_unknown_pages_and_expired_forms_get_the_layout_not_a_bare_error(owner, settings):
    settings.DEBUG = False
    client = Client(HTTP_HOST=EXTERNAL_HOST)
    client.force_login(owner)
    resp = client.get("/no-such-page/")
    assert resp.status_code == 404 and "Page not found" in text(resp) and "@owner" in text(resp)
    strict = Client(enforce_csrf_checks=True, HTTP_HOST=EXTERNAL_HOST,
                    HTTP_ORIGIN=f"http://{EXTERNAL_HOST}")
    resp = strict.post("/login/", {"email": owner.email, "password": DEFAULT_PASSWORD})
    assert resp.status_code == 403 and "This form has expired" in text(resp)


def test_dashboard_links_internal_sessions_to_the_internal_surface(browse, entitled):
    session = SessionFactory(owner=entitled, status="running", exposure="internal")
    page = text(browse(entitled).get("/"))
    assert f'href="http://{INTERNAL_HOST}/sessions/{session.pk}/"' in page
