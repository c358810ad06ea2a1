"""The daily cap under concurrency, on MariaDB: parallel uploads at the cap boundary never
create more submissions than the cap (count and insert share one transaction holding the
user's row lock)."""
from __future__ import annotations

import threading

import pytest
from django.db import connections

from competitions import services
from competitions.models import Competition, Submission
from competitions.seeding import TITANIC, seed_competitions
from competitions.tests.helpers import titanic_csv, upload
from medforge.accounts.factories import UserFactory
from medforge.api.problems import Problem

pytestmark = [pytest.mark.mariadb, pytest.mark.django_db(transaction=True)]


def _burst(user, competition, n: int) -> tuple[int, list[str]]:
    data = titanic_csv()
    barrier = threading.Barrier(n)
    accepted = 0
    refused: list[str] = []
    lock = threading.Lock()

    def one():
        nonlocal accepted
        try:
            barrier.wait(timeout=30)
            services.submission_create(user=user, competition=competition, upload=upload(data))
            with lock:
                accepted += 1
        except Problem as exc:
            with lock:
                refused.append(exc.code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return accepted, refused


def test_parallel_uploads_at_the_cap_boundary_never_exceed_it(data_roots, monkeypatch):
    monkeypatch.setattr(services, "_enqueue_scoring", lambda pk: None)  # intake only
    seed_competitions()
    competition = Competition.objects.get(slug=TITANIC)
    competition.daily_cap = 3
    competition.save()
    user, other = UserFactory(password=None), UserFactory(password=None)
    # one already used today: two places left for eight parallel uploads
    services.submission_create(user=user, competition=competition, upload=upload(titanic_csv()))

    accepted, refused = _burst(user, competition, 8)

    assert accepted == 2
    assert refused == ["submission_cap_reached"] * 6
    assert Submission.objects.filter(user=user, competition=competition).count() == 3
    # the stored files match the rows: no orphan from the refused uploads
    stored = [p for p in (data_roots["SUBMISSIONS_DIR"] / TITANIC / str(user.pk)).iterdir()]
    assert sorted(p.name for p in stored) == sorted(f"{s.pk}.csv" for s in Submission.objects.filter(user=user))
    # another user is not affected by this user's cap
    accepted, refused = _burst(other, competition, 4)
    assert accepted == 3 and refused == ["submission_cap_reached"]
