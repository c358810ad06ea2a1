"""Queueing of lifecycle tasks, in one place so services never import Celery task objects
directly and tests can observe (or redirect) what would be queued."""
from __future__ import annotations

from collections.abc import Callable

# Tests replace this with a recorder or a sender bound to another broker.
_sender: Callable[[str, str], None] | None = None


def _send(task_name: str, session_id: str) -> None:
    if _sender is not None:
        _sender(task_name, session_id)
        return
    from . import tasks

    getattr(tasks, task_name).apply_async(args=[session_id])


def enqueue_start(session_id: str) -> None:
    _send("start_session", str(session_id))


def enqueue_stop(session_id: str) -> None:
    _send("stop_session", str(session_id))


def set_sender(sender: Callable[[str, str], None] | None) -> None:
    """Route queued tasks to `sender(task_name, session_id)`; None restores Celery."""
    global _sender
    _sender = sender
