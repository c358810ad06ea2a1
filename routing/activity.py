"""IDE activity for idle culling, batched: no database write per proxied request.

Every allowed forward-auth decision notes `slug → now` in a per-process dict (one dict store
under the GIL). At most every FORWARD_AUTH_ACTIVITY_FLUSH_SECONDS the request that notices the
interval has passed hands the whole batch to `sessions_app.services.session_record_activity`
in one call, and the process flushes what is left when it exits. Idle culling works on a
timescale of many minutes, so losing at most one interval of notes on a crash is harmless.
"""
from __future__ import annotations

import atexit
import threading
import time
from datetime import UTC, datetime

import structlog
from django.conf import settings

from sessions_app import services as session_services

log = structlog.get_logger(__name__)

_pending: dict[str, float] = {}
_lock = threading.Lock()
_last_flush = time.monotonic()


def flush_seconds() -> float:
    return float(getattr(settings, "FORWARD_AUTH_ACTIVITY_FLUSH_SECONDS", 30))


def activity_note(slug: str) -> None:
    """Remember that `slug`'s IDE was used now; flush the batch when its interval is over."""
    _pending[slug] = time.time()
    if time.monotonic() - _last_flush >= flush_seconds():
        activity_flush()


def activity_flush() -> int:
    """Write the batch through sessions_app; returns how many sessions it named.

    On failure the notes are kept (newest time per slug wins) for the next attempt.
    """
    global _last_flush, _pending
    with _lock:
        _last_flush = time.monotonic()
        if not _pending:
            return 0
        batch, _pending = _pending, {}
        # One C-level copy: a request that picked up the old dict just before the swap may
        # still write into it, which must not break the iteration below (its note is lost).
        notes = list(batch.items())
    seen = {slug: datetime.fromtimestamp(ts, tz=UTC) for slug, ts in notes}
    try:
        session_services.session_record_activity(seen=seen)
    except Exception:
        log.warning("forward_auth.activity_flush_failed", sessions=len(seen), exc_info=True)
        with _lock:
            for slug, ts in notes:
                if _pending.get(slug, 0.0) < ts:
                    _pending[slug] = ts
        return 0
    return len(seen)


def pending() -> dict[str, float]:
    """A copy of the notes not yet written (tests, diagnostics)."""
    return dict(_pending)


def _flush_at_exit() -> None:
    try:
        activity_flush()
    except Exception:  # never let interpreter shutdown fail on this
        pass


atexit.register(_flush_at_exit)
