"""Celery tasks of the `scoring` queue (routed by CELERY_TASK_ROUTES): thin and idempotent.

`score_submission` claims the submission with a compare-and-set (queued → scoring) and calls
the scoring service; a duplicate or late delivery finds nothing to claim and does nothing.
`requeue_stale` (Celery beat, every 60 s) recovers submissions left in `scoring` by a killed
worker and re-sends queued ones whose message was lost.
"""
from __future__ import annotations

from celery import shared_task
from django.conf import settings

from competitions import services


@shared_task(
    name="competitions.tasks.score_submission",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.SCORING_TIME_LIMIT_SECONDS,
    time_limit=settings.SCORING_TIME_LIMIT_SECONDS + 30,
)
def score_submission(submission_id: int) -> str:
    return services.submission_score(submission_id=int(submission_id))


@shared_task(name="competitions.tasks.requeue_stale", acks_late=True, time_limit=120)
def requeue_stale() -> dict[str, int]:
    return services.submissions_requeue_stale()
