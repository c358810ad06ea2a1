"""IDE activity for idle culling: noted per request in memory, written in batches."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from routing import activity
from sessions_app.models import Session

from .conftest import host_for, session_cookie

pytestmark = [pytest.mark.django_db, pytest.mark.mariadb]


def test_allowed_requests_are_batched_then_written_in_one_flush(caller, owner, make_session):
    a, b = make_session(owner), make_session(owner)
    cookie = session_cookie(owner)
    caller.ask(host_for(a.slug), cookie=cookie)
    caller.ask(host_for(b.slug), cookie=cookie)
    with CaptureQueriesContext(connection) as queries:
        for _ in range(5):
            assert caller.ask(host_for(a.slug), cookie=cookie).status_code == 200
    assert len(queries) == 0  # no write per request
    assert Session.objects.get(pk=a.pk).last_activity_at is None
    assert set(activity.pending()) == {a.slug, b.slug}

    assert activity.activity_flush() == 2
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.last_activity_at is not None and b.last_activity_at is not None
    assert activity.pending() == {}


def test_refused_requests_are_not_activity(caller, owner, stranger, make_session):
    s = make_session(owner)
    caller.ask(host_for(s.slug), cookie=session_cookie(stranger))
    caller.ask(host_for(s.slug))
    assert activity.pending() == {}


def test_the_batch_flushes_itself_when_its_interval_is_over(caller, owner, make_session,
                                                           settings):
    s = make_session(owner)
    settings.FORWARD_AUTH_ACTIVITY_FLUSH_SECONDS = 0
    assert caller.ask(host_for(s.slug), cookie=session_cookie(owner)).status_code == 200
    s.refresh_from_db()
    assert s.last_activity_at is not None
    assert activity.pending() == {}


def test_a_failed_flush_keeps_the_notes(owner, make_session, monkeypatch):
    from sessions_app import services

    s = make_session(owner)
    activity.activity_note(s.slug)

    def broken(*, seen):
        raise RuntimeError("database down")

    monkeypatch.setattr(services, "session_record_activity", broken)
    assert activity.activity_flush() == 0
    assert s.slug in activity.pending()


def test_a_note_written_while_a_flush_copies_the_batch_does_not_break_it(owner, make_session,
                                                                        monkeypatch):
    """Requests note activity without the lock: one that picked up the batch just before the
    flush swapped it may still write into it while the flush reads it."""
    from datetime import datetime as real_datetime

    s = make_session(owner)
    activity.activity_note(s.slug)
    swapped_out = activity._pending

    class LateNote:
        @staticmethod
        def fromtimestamp(ts, tz=None):
            swapped_out.setdefault("zzzzzzzz", ts)  # the other thread's late write
            return real_datetime.fromtimestamp(ts, tz=tz)

    monkeypatch.setattr(activity, "datetime", LateNote)
    assert activity.activity_flush() == 1
    s.refresh_from_db()
    assert s.last_activity_at is not None
