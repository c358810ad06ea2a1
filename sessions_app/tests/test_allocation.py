"""Allocation under real concurrency on MariaDB: the user-row lock and the unique active-GPU
index must hold whatever the interleaving (SPEC §4 allocation invariants)."""
from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import IntegrityError, connection, transaction

from medforge.accounts.factories import UserFactory
from sessions_app.factories import GPUFactory, PackFactory
from sessions_app.models import ACTIVE_STATUSES, Session
from testkit.cast import make_client

pytestmark = [pytest.mark.mariadb, pytest.mark.django_db(transaction=True)]


def _burst(clients, path="/api/v2/external/sessions"):
    """POST from every client at once (threads released together); returns the responses."""
    barrier = threading.Barrier(len(clients))
    results = [None] * len(clients)

    def worker(i, client):
        try:
            barrier.wait()
            results[i] = client.post(path, {}, format="json")
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def test_fifty_users_four_gpus_exactly_four_sessions(queued):
    assert connection.vendor == "mysql"
    PackFactory(slug="default-pack", is_default=True)
    for i in range(4):
        GPUFactory(index=i)
    users = [UserFactory() for _ in range(50)]
    clients = [make_client(u) for u in users]

    responses = _burst(clients)

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 4, 409: 46}, statuses
    codes = Counter(r.json()["code"] for r in responses if r.status_code == 409)
    assert codes == {"no_gpus_available": 46}
    active = list(Session.objects.filter(status__in=ACTIVE_STATUSES))
    assert len(active) == 4 == Session.objects.count()
    assert sorted(s.gpu.index for s in active) == [0, 1, 2, 3]
    assert len({s.owner_id for s in active}) == 4
    # Exactly the winners' start tasks were queued, once each.
    assert sorted(sid for _, sid in queued) == sorted(str(s.id) for s in active)


def test_one_user_many_parallel_creates_stays_within_limit():
    PackFactory(slug="default-pack", is_default=True)
    for i in range(8):
        GPUFactory(index=i)
    user = UserFactory(max_concurrent_sessions=2)
    clients = [make_client(user) for _ in range(10)]

    responses = _burst(clients)

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 2, 409: 8}, statuses
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {
        "concurrent_session_limit"}
    assert Session.objects.filter(owner=user, status__in=ACTIVE_STATUSES).count() == 2


def test_database_refuses_a_second_active_session_on_one_gpu():
    """No code path can double-book: the unique index rejects a hand-written insert."""
    pack = PackFactory(slug="default-pack", is_default=True)
    gpu = GPUFactory(index=0)
    a, b = UserFactory(), UserFactory()
    Session.objects.create(owner=a, exposure="external", pack=pack, gpu=gpu, active_gpu=gpu)
    with pytest.raises(IntegrityError), transaction.atomic():
        Session.objects.create(owner=b, exposure="internal", pack=pack, gpu=gpu, active_gpu=gpu)
    # A terminal session must not hold the GPU either (check constraint).
    with pytest.raises(IntegrityError), transaction.atomic():
        Session.objects.create(owner=b, exposure="external", pack=pack, gpu=gpu,
                               active_gpu=None, status="running")
