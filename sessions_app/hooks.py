"""Callbacks run (after commit) whenever a session's routing-relevant state changes:
status, upstream, owner-visible exposure. The forward-auth cache registers here in its
AppConfig.ready(), so sessions_app never imports routing."""
from __future__ import annotations

from collections.abc import Callable

_callbacks: list[Callable[[str], None]] = []


def on_session_changed(fn: Callable[[str], None]) -> Callable[[str], None]:
    """Register fn(slug)."""
    _callbacks.append(fn)
    return fn


def session_changed(slug: str) -> None:
    for fn in _callbacks:
        fn(slug)


def session_changed_on_commit(slug: str) -> None:
    from django.db import transaction

    transaction.on_commit(lambda: session_changed(slug))
