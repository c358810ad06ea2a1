"""The Celery beat entries of the sessions app, named for their cadence.

Wire into settings with:
    from sessions_app.beat import beat_schedule
    CELERY_BEAT_SCHEDULE = {**beat_schedule(SESSION_POLL_INTERVAL_SECONDS)}
Pure data (no Django import), so settings.py can import it.
"""
from __future__ import annotations


def beat_schedule(poll_interval_s: int, *, cull_interval_s: int = 60) -> dict:
    poll = max(1, int(poll_interval_s))
    return {
        "sessions-reconcile-every-poll-interval": {
            "task": "sessions_app.tasks.reconcile",
            "schedule": float(poll),
            # A pass queued behind a busy worker is worthless once the next one is due.
            "options": {"expires": float(poll)},
        },
        "sessions-cull-idle-every-minute": {
            "task": "sessions_app.tasks.cull_idle",
            "schedule": float(cull_interval_s),
            "options": {"expires": float(cull_interval_s)},
        },
    }
