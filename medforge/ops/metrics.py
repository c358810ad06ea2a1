"""Prometheus metric objects shared by every process (web, worker, beat).

Counters and histograms are recorded where things happen (sessions tasks, scoring, requests,
forward auth). Under gunicorn/Celery set PROMETHEUS_MULTIPROC_DIR so samples from all
processes are merged at scrape time; gauges that describe database state (sessions by
state, GPUs) are computed at scrape time by a collector in status/collectors.py.
"""
from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUEST_LATENCY = Histogram(
    "medforge_http_request_duration_seconds", "HTTP request latency by route and method.",
    ["route", "method", "status_class"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SESSION_START_DURATION = Histogram(
    "medforge_session_start_duration_seconds", "From POST sessions to running.",
    buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300),
)
SESSION_STARTS_FAILED = Counter(
    "medforge_session_starts_failed_total", "Session starts that ended in error.", ["reason"],
)
SESSION_STARTS = Counter("medforge_session_starts_total", "Sessions that reached running.")
SESSION_STOPS = Counter("medforge_session_stops_total", "Sessions stopped.", ["outcome"])
RECONCILE_DURATION = Histogram(
    "medforge_reconcile_pass_duration_seconds", "One reconcile pass.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RECONCILE_FAILURES = Counter("medforge_reconcile_failures_total", "Reconcile passes that failed.")
RECONCILE_ACTIONS = Counter(
    "medforge_reconcile_actions_total", "Corrections made by reconcile.", ["action"],
)
SCORING_DURATION = Histogram(
    "medforge_scoring_duration_seconds", "Scoring one submission.", ["competition"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
SCORING_FAILURES = Counter(
    "medforge_scoring_failures_total", "Scoring runs that failed.", ["competition"],
)
SUBMISSIONS_RECEIVED = Counter(
    "medforge_submissions_received_total", "Uploads by outcome.", ["competition", "outcome"],
)
FORWARD_AUTH_DECISIONS = Counter(
    "medforge_forward_auth_decisions_total", "Forward-auth answers by status and cache path.",
    ["status", "path"],
)
SNAPSHOTS_PRUNED = Counter(
    "medforge_snapshots_pruned_total", "Snapshots destroyed by the retention policy.",
)
