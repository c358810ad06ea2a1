"""Scoring: append-only runs with exactly one official score, rescoring that really rescores,
idempotent and crash-safe tasks (a killed worker's submission is rescored later, never stuck),
clear failures, the public/private split, and the metrics recorded on the way."""
from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import signal
import time

import pytest
from django.db import connections
from django.utils import timezone
from prometheus_client import REGISTRY

from competitions import selectors, services, tasks
from competitions.dataroots import holdout_path, submission_file
from competitions.models import Competition, Score, Submission, SubmissionStatus
from competitions.seeding import CIFAR, TITANIC, seed_competitions
from competitions.tests.helpers import holdout_rows, titanic_csv, upload
from medforge.accounts.factories import UserFactory
from medforge.accounts.models import AuditLog
from medforge.api.problems import Problem
from medforge.celery import app as celery_app
from testkit.api import assert_envelope, assert_problem, schema_validator


def submit(user, competition, data: bytes) -> Submission:
    return services.submission_create(user=user, competition=competition, upload=upload(data))


def official(sub: Submission) -> Score:
    return Score.objects.get(official_for=sub)


def sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_task_runs_on_the_scoring_queue_with_acks_late_and_the_time_limit(settings):
    route = celery_app.amqp.router.route({}, "competitions.tasks.score_submission")
    assert route["queue"].name == "scoring"
    assert tasks.score_submission.acks_late is True
    assert tasks.score_submission.soft_time_limit == settings.SCORING_TIME_LIMIT_SECONDS
    assert celery_app.amqp.router.route({}, "competitions.tasks.requeue_stale")["queue"].name == "scoring"
    # beat runs the recovery pass often enough that a killed worker's submission is not stuck
    [entry] = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "competitions.tasks.requeue_stale"]
    assert entry["schedule"] <= 300


def test_scoring_is_idempotent_and_records_duration(titanic, owner):
    sub = submit(owner, titanic, titanic_csv(correct=209))
    before = sample("medforge_scoring_duration_seconds_count", {"competition": TITANIC})
    assert tasks.score_submission.apply(args=[sub.pk]).get() == "scored"
    assert tasks.score_submission.apply(args=[sub.pk]).get() == "skipped"  # duplicate delivery
    assert sample("medforge_scoring_duration_seconds_count", {"competition": TITANIC}) == before + 1
    sub.refresh_from_db()
    assert sub.status == SubmissionStatus.SCORED
    assert Score.objects.filter(submission=sub).count() == 1
    run = official(sub)
    # 209 of 418 right overall; the public board scores its own subset
    assert run.primary_score == pytest.approx(run.components["public"]["correct"] / run.components["public"]["total"])
    assert run.metric_version == "accuracy/1" and run.split_version == "titanic-demo-v1"
    assert len(run.manifest_sha256) == 64


def test_admin_rescore_really_rescores_and_keeps_history(titanic, owner, admin, client_for, data_roots,
                                                         django_capture_on_commit_callbacks):
    sub = submit(owner, titanic, titanic_csv())
    services.submission_score(submission_id=sub.pk)
    first = official(sub)
    assert first.primary_score == 1.0
    # The operator corrects the holdout: every label flipped. A real rescore must see it.
    path = holdout_path(TITANIC)
    rows = holdout_rows(TITANIC)
    path.write_text("PassengerId,Survived\n" + "".join(f"{pid},{1 - int(lab)}\n" for pid, lab in rows))
    os.utime(path, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))  # a new file version

    url = f"/api/v2/admin/submissions/{sub.pk}/score"
    assert_problem(client_for(owner).post(url), 403, "admin_required")
    assert_problem(client_for(admin).post("/api/v2/admin/submissions/999999/score"), 404, "submission_not_found")
    with django_capture_on_commit_callbacks(execute=True):
        resp = client_for(admin).post(url)
    schema_validator().validate("POST", url, resp)
    body = assert_envelope(resp, 202)
    assert body["queued"] is True and body["submission"]["status"] == "queued"

    sub.refresh_from_db()
    assert sub.status == SubmissionStatus.SCORED
    runs = list(Score.objects.filter(submission=sub).order_by("id"))
    assert len(runs) == 2  # append-only
    assert [r.official for r in runs] == [False, True]  # exactly one official: the new run
    assert runs[1].primary_score == 0.0 and runs[0].primary_score == 1.0
    assert AuditLog.objects.filter(action="submission.rescore", target_id=str(sub.pk), actor=admin).exists()
    # the leaderboard follows the official score
    lb = assert_envelope(client_for(owner).get(f"/api/v2/external/competitions/{TITANIC}/leaderboard"))
    assert [(r["handle"], r["score"]) for r in lb] == [("owner", 0.0)]


def test_a_late_run_from_an_older_claim_is_dropped(titanic, owner, admin):
    sub = submit(owner, titanic, titanic_csv())
    attempt = services.submission_claim(submission_id=sub.pk)
    stale_run = services.compute_score(Submission.objects.get(pk=sub.pk))
    services.submission_rescore(submission=sub, by=admin)  # disowns the claim in flight
    assert services.submission_score(submission_id=sub.pk) == "scored"
    assert services.submission_record_score(submission_id=sub.pk, attempt=attempt, run=stale_run) is None
    assert Score.objects.filter(submission=sub).count() == 1


def test_missing_holdout_fails_clearly_and_a_rescore_recovers(titanic, owner, admin, data_roots):
    sub = submit(owner, titanic, titanic_csv())
    path = holdout_path(TITANIC)
    saved = path.read_bytes()
    path.unlink()
    failures = sample("medforge_scoring_failures_total", {"competition": TITANIC})
    assert services.submission_score(submission_id=sub.pk) == "failed"
    sub.refresh_from_db()
    assert sub.status == SubmissionStatus.FAILED and "not installed" in sub.error
    assert sample("medforge_scoring_failures_total", {"competition": TITANIC}) == failures + 1
    path.write_bytes(saved)
    services.submission_rescore(submission=sub, by=admin)
    assert services.submission_score(submission_id=sub.pk) == "scored"
    sub.refresh_from_db()
    assert sub.status == SubmissionStatus.SCORED and sub.error == ""


@pytest.mark.parametrize("newline", [b"\r", b"\r\n"])
def test_a_file_accepted_at_upload_scores_whatever_its_line_endings(titanic, owner, newline):
    # The upload is read through Django's UploadedFile (which also splits at a lone CR, as
    # "CSV (Macintosh)" exports end lines), the stored copy through a plain binary file.
    plain = submit(owner, titanic, titanic_csv(correct=209))
    sub = submit(owner, titanic, titanic_csv(correct=209).replace(b"\n", newline))
    assert services.submission_score(submission_id=plain.pk) == "scored"
    assert services.submission_score(submission_id=sub.pk) == "scored"
    assert official(sub).primary_score == official(plain).primary_score


def test_a_stored_file_changed_after_upload_is_not_scored(titanic, owner):
    sub = submit(owner, titanic, titanic_csv())
    submission_file(sub).write_bytes(titanic_csv(correct=0))
    assert services.submission_score(submission_id=sub.pk) == "failed"
    sub.refresh_from_db()
    assert "checksum" in sub.error and not Score.objects.filter(submission=sub).exists()


def test_public_and_private_boards(titanic, owner, stranger, admin, client_for):
    import json

    from competitions.dataroots import manifest_path

    public_ids = set(json.loads(manifest_path(TITANIC).read_text())["public_ids"])
    private_ids = {pid for pid, _ in holdout_rows(TITANIC)} - public_ids
    # owner: perfect on the public part, wrong on the private part; stranger: the reverse
    services.submission_score(submission_id=submit(owner, titanic, titanic_csv(flip=private_ids)).pk)
    services.submission_score(submission_id=submit(stranger, titanic, titanic_csv(flip=public_ids)).pk)
    url = f"/api/v2/external/competitions/{TITANIC}/leaderboard"
    public = assert_envelope(client_for(owner).get(url))
    assert [(r["handle"], r["score"]) for r in public] == [("owner", 1.0), ("stranger", 0.0)]
    # private board: hidden from users until the reveal date, always visible to admins
    assert_problem(client_for(owner).get(url, {"board": "private"}), 403, "permission_denied")
    private = assert_envelope(client_for(admin).get(url, {"board": "private"}))
    assert [(r["handle"], r["score"]) for r in private] == [("stranger", 1.0), ("owner", 0.0)]
    Competition.objects.filter(pk=titanic.pk).update(reveal_at=timezone.now() - dt.timedelta(minutes=1))
    resp = client_for(owner).get(url, {"board": "private"})
    schema_validator().validate("GET", url, resp)
    assert [r["handle"] for r in assert_envelope(resp)] == ["stranger", "owner"]
    mine = assert_envelope(client_for(owner).get(f"/api/v2/external/competitions/{TITANIC}/submissions/me"))
    assert mine[0]["private_score"] == 0.0  # revealed now
    assert_problem(client_for(owner).get(url, {"board": "secret"}), 400, "invalid_filter")


def test_requeue_stale_recovers_stuck_rows_and_gives_up_after_repeated_crashes(titanic, owner, monkeypatch, settings,
                                                                          django_capture_on_commit_callbacks):
    sent: list[int] = []
    monkeypatch.setattr(services, "_enqueue_scoring", sent.append)
    stuck = submit(owner, titanic, titanic_csv())
    services.submission_claim(submission_id=stuck.pk)  # its worker "dies" here
    hopeless = submit(owner, titanic, titanic_csv())
    services.submission_claim(submission_id=hopeless.pk)
    Submission.objects.filter(pk=hopeless.pk).update(interrupted_runs=services.MAX_INTERRUPTED_RUNS - 1)
    lost = submit(owner, titanic, titanic_csv())  # its message never reached a worker
    an_hour_ago = timezone.now() - dt.timedelta(hours=1)
    Submission.objects.filter(pk=lost.pk).update(created_at=an_hour_ago, queued_at=an_hour_ago)

    # fresh claims are left alone: their worker may still be running
    assert services.submissions_requeue_stale() == {"requeued": 0, "failed": 0, "resent": 1}
    later = timezone.now() + dt.timedelta(seconds=settings.SCORING_TIME_LIMIT_SECONDS + 61)
    with django_capture_on_commit_callbacks(execute=True):
        counts = services.submissions_requeue_stale(now=later)
    assert counts["requeued"] == 1 and counts["failed"] == 1
    stuck.refresh_from_db()
    hopeless.refresh_from_db()
    assert stuck.status == SubmissionStatus.QUEUED and stuck.interrupted_runs == 1
    assert hopeless.status == SubmissionStatus.FAILED and "interrupted" in hopeless.error
    assert stuck.pk in sent and lost.pk in sent
    assert services.submission_score(submission_id=stuck.pk) == "scored"


def test_a_queued_row_is_resent_at_most_once_per_window_however_long_the_backlog(
        titanic, owner, monkeypatch):
    sent: list[int] = []
    monkeypatch.setattr(services, "_enqueue_scoring", sent.append)
    waiting = submit(owner, titanic, titanic_csv())
    an_hour_ago = timezone.now() - dt.timedelta(hours=1)
    Submission.objects.filter(pk=waiting.pk).update(created_at=an_hour_ago, queued_at=an_hour_ago)
    now = timezone.now()
    assert services.submissions_requeue_stale(now=now)["resent"] == 1
    # A backlog keeps it queued: the next passes of the same window leave it alone...
    for minutes in (1, 2, 4):
        later = now + dt.timedelta(minutes=minutes)
        assert services.submissions_requeue_stale(now=later)["resent"] == 0
    # ...and once a full window has passed it is sent again.
    window = dt.timedelta(seconds=services.QUEUED_STALE_SECONDS + 1)
    assert services.submissions_requeue_stale(now=now + window)["resent"] == 1
    assert sent == [waiting.pk, waiting.pk]


def test_a_rescored_old_submission_is_not_resent_at_once(titanic, owner, admin, monkeypatch):
    sent: list[int] = []
    monkeypatch.setattr(services, "_enqueue_scoring", sent.append)
    old = submit(owner, titanic, titanic_csv())
    Submission.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=3),
                                                status=SubmissionStatus.SCORED)
    services.submission_rescore(submission=Submission.objects.get(pk=old.pk), by=admin)
    sent.clear()  # the rescore's own message
    assert services.submissions_requeue_stale()["resent"] == 0


def _score_until_killed(submission_id: int) -> None:
    """Child process: a worker that hangs inside scoring (the parent SIGKILLs it)."""
    from competitions import services as child_services

    def hang(_submission):
        time.sleep(300)

    child_services.compute_score = hang
    child_services.submission_score(submission_id=submission_id)


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_while_scoring_leaves_the_submission_rescored_later(data_roots, monkeypatch, settings):
    """A real process claims the submission and is SIGKILLed mid-scoring (what the OOM killer
    or a node loss does); requeue_stale then puts it back and it is scored normally."""
    monkeypatch.setattr(services, "_enqueue_scoring", lambda pk: None)
    seed_competitions()
    competition = Competition.objects.get(slug=CIFAR)
    user = UserFactory(password=None)
    rows = ["id,label"] + [f"{pid},{label}" for pid, label in holdout_rows(CIFAR)]
    sub = submit(user, competition, ("\n".join(rows) + "\n").encode())

    connections.close_all()  # the child must not share the parent's database socket
    worker = multiprocessing.get_context("fork").Process(target=_score_until_killed, args=(sub.pk,))
    worker.start()
    deadline = time.monotonic() + 30
    while Submission.objects.get(pk=sub.pk).status != SubmissionStatus.SCORING:
        assert time.monotonic() < deadline and worker.is_alive(), "the worker never claimed the submission"
        time.sleep(0.05)
    os.kill(worker.pid, signal.SIGKILL)
    worker.join(10)
    assert worker.exitcode == -signal.SIGKILL
    assert Submission.objects.get(pk=sub.pk).status == SubmissionStatus.SCORING  # stuck, for now

    monkeypatch.setattr(services, "_enqueue_scoring",
                        lambda pk: tasks.score_submission.apply(args=[pk]))
    later = timezone.now() + dt.timedelta(seconds=settings.SCORING_TIME_LIMIT_SECONDS + 61)
    assert services.submissions_requeue_stale(now=later)["requeued"] == 1
    sub.refresh_from_db()
    assert sub.status == SubmissionStatus.SCORED and sub.interrupted_runs == 1
    assert official(sub).primary_score == 1.0


def test_intake_outcomes_are_counted(titanic, owner):
    accepted = sample("medforge_submissions_received_total", {"competition": TITANIC, "outcome": "accepted"})
    invalid = sample("medforge_submissions_received_total", {"competition": TITANIC, "outcome": "invalid"})
    submit(owner, titanic, titanic_csv())
    with pytest.raises(Problem):
        submit(owner, titanic, b"PassengerId,Survived\n1,1\n")
    received = sample("medforge_submissions_received_total", {"competition": TITANIC, "outcome": "accepted"})
    assert received == accepted + 1
    assert sample("medforge_submissions_received_total", {"competition": TITANIC, "outcome": "invalid"}) == invalid + 1


def test_other_users_are_unaffected_by_a_rescore(titanic, owner, stranger, admin):
    a = submit(owner, titanic, titanic_csv())
    b = submit(stranger, titanic, titanic_csv(correct=100))
    for s in (a, b):
        services.submission_score(submission_id=s.pk)
    services.submission_rescore(submission=b, by=admin)
    services.submission_score(submission_id=b.pk)
    assert Score.objects.filter(submission=a).count() == 1
    assert Score.objects.filter(official_for__isnull=False).count() == 2
    assert selectors.submission_status_counts() == {"queued": 0, "scoring": 0, "scored": 2, "failed": 0}
