"""Callbacks run when something cached about a user's credentials changes.

The forward-auth cache (routing/) registers here in its AppConfig.ready(); accounts services
call `user_credentials_changed` after commit, so accounts never imports routing.
"""
from __future__ import annotations

from collections.abc import Callable

_user_callbacks: list[Callable[[int], None]] = []
_token_callbacks: list[Callable[[str], None]] = []
_session_key_callbacks: list[Callable[[str], None]] = []
_session_counter: list[Callable[[list[int]], dict[int, int]]] = []


def on_user_changed(fn: Callable[[int], None]) -> Callable[[int], None]:
    _user_callbacks.append(fn)
    return fn


def on_token_revoked(fn: Callable[[str], None]) -> Callable[[str], None]:
    """fn(token_hash)"""
    _token_callbacks.append(fn)
    return fn


def on_session_key_ended(fn: Callable[[str], None]) -> Callable[[str], None]:
    """fn(django_session_key) — logout."""
    _session_key_callbacks.append(fn)
    return fn


def user_credentials_changed(user_id: int) -> None:
    for fn in _user_callbacks:
        fn(user_id)


def token_revoked(token_hash: str) -> None:
    for fn in _token_callbacks:
        fn(token_hash)


def session_key_ended(session_key: str) -> None:
    for fn in _session_key_callbacks:
        fn(session_key)


def provide_active_session_counts(fn: Callable[[list[int]], dict[int, int]]) -> None:
    """The sessions app registers its one active-session count here (AppConfig.ready)."""
    _session_counter[:] = [fn]


def active_session_counts(user_ids: list[int]) -> dict[int, int]:
    if not _session_counter:
        return {uid: 0 for uid in user_ids}
    return _session_counter[0](user_ids)
