"""Scoring through the real broker: a Celery worker process (Redis, MariaDB) picks the task up
and scores the submission; and django-admin's rescore action really rescores."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest
from django.conf import settings
from django.db import connection

from competitions import services, tasks
from competitions.models import Competition, Score, Submission, SubmissionStatus
from competitions.seeding import TITANIC, seed_competitions
from competitions.tests.helpers import titanic_csv, upload
from medforge.accounts.factories import AdminFactory, UserFactory
from medforge.celery import app as celery_app


@pytest.mark.slow
@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_scores_a_queued_submission(data_roots, monkeypatch):
    seed_competitions()
    competition = Competition.objects.get(slug=TITANIC)
    user = UserFactory(password=None)
    # A queue of this test's own, so no other suite's worker can take the message.
    queue = f"scoring-test-{uuid.uuid4().hex[:8]}"
    celery_app.conf.task_always_eager = False  # the autouse fixture restores eager mode
    monkeypatch.setattr(services, "_enqueue_scoring",
                        lambda pk: tasks.score_submission.apply_async(args=[pk], queue=queue))
    sub = services.submission_create(user=user, competition=competition, upload=upload(titanic_csv(correct=300)))

    db = connection.settings_dict
    env = {
        **os.environ, "MEDFORGE_ENV": "test", "LOG_LEVEL": "WARNING",
        "DATABASE_URL": f"mysql://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 3306}/{db['NAME']}",
        **{name: str(path) for name, path in data_roots.items()},
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
    }
    env.pop("PYTEST_VERSION", None)
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "medforge", "worker", "-Q", queue, "-P", "solo",
         "--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "WARNING"],
        cwd=settings.BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while Submission.objects.get(pk=sub.pk).status != SubmissionStatus.SCORED:
            assert worker.poll() is None, worker.stdout.read()
            assert time.monotonic() < deadline, "the worker did not score the submission"
            time.sleep(0.2)
    finally:
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(10)
    score = Score.objects.get(official_for=sub)
    expected = score.components["public"]["correct"] / score.components["public"]["total"]
    assert score.primary_score == pytest.approx(expected) and 0 < score.primary_score < 1


def test_django_admin_rescore_action_really_rescores(titanic, django_capture_on_commit_callbacks):
    from django.test import Client

    admin = AdminFactory(password=None)
    user = UserFactory(password=None)
    sub = services.submission_create(user=user, competition=titanic, upload=upload(titanic_csv()))
    services.submission_score(submission_id=sub.pk)
    client = Client(HTTP_ORIGIN=f"http://{settings.BASE_DOMAIN}")
    client.force_login(admin)
    for model in ("dataset", "competition", "submission", "score", "leaderboardentry"):
        assert client.get(f"/admin/competitions/{model}/").status_code == 200, model
    assert client.get(f"/admin/competitions/submission/{sub.pk}/change/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        resp = client.post("/admin/competitions/submission/",
                           {"action": "rescore", "_selected_action": [sub.pk]})
    assert resp.status_code == 302
    assert Score.objects.filter(submission=sub).count() == 2
    assert Score.objects.filter(official_for=sub).count() == 1
    sub.refresh_from_db()
    assert sub.status == SubmissionStatus.SCORED
