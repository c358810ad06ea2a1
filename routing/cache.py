"""The forward-auth cache: credential → user, user → facts, slug → session, and their invalidation.

Entries live in Django's default cache (Redis in test and production, shared by every process).
Four kinds of entry, all small tuples:

    fa:c:<sha256(cookie session key)>  ("c", user_id, auth_version) | ("n",)   cookie → user
    fa:t:<token hash>                  ("t", user_id, expires_ts)   | ("n",)   token → user
    fa:u:<user_id>                     (auth_version, is_active, is_staff, may_use_internal)
    fa:s:<slug>                        (owner_id, exposure, upstream) | ()     slug → session

A cookie entry remembers the user's `auth_version` at the time its session hash was verified;
when the user's facts show a newer version (password, role, entitlement or activation changed)
the cookie is verified again, so other sessions die with a password change and role changes
apply at once. ("n",) marks a credential that can never become valid (a Django session key is
never promoted to an authenticated one, a token secret is never reissued).

Invalidation replaces an entry with a short-lived tombstone instead of deleting it, and fills
use `add` (set-if-absent): a slow cold read that started before a change committed can then
never write its stale answer back after the invalidation ran.
"""
from __future__ import annotations

import hashlib
from typing import Any

import structlog
from django.conf import settings
from django.core.cache import caches

log = structlog.get_logger(__name__)

TOMBSTONE = "~"
NEGATIVE = ("n",)
NOT_ROUTABLE: tuple = ()


def credential_seconds() -> int:
    return int(getattr(settings, "FORWARD_AUTH_CREDENTIAL_CACHE_SECONDS", 300))


def session_seconds() -> int:
    return int(getattr(settings, "FORWARD_AUTH_SESSION_CACHE_SECONDS", 60))


def negative_seconds() -> int:
    return int(getattr(settings, "FORWARD_AUTH_NEGATIVE_CACHE_SECONDS", 60))


def hold_seconds() -> int:
    return int(getattr(settings, "FORWARD_AUTH_INVALIDATION_HOLD_SECONDS", 3))


def backend():
    return caches["default"]


# --- keys -------------------------------------------------------------------------------------

def cookie_key(session_key: str) -> str:
    # Hashed so that raw session keys never appear as cache key names.
    return "fa:c:" + hashlib.sha256(session_key.encode("utf-8", "surrogatepass")).hexdigest()


def token_key(token_hash: str) -> str:
    return "fa:t:" + token_hash


def user_key(user_id: int) -> str:
    return f"fa:u:{int(user_id)}"


def slug_key(slug: str) -> str:
    return "fa:s:" + slug


# --- reads and fills --------------------------------------------------------------------------

def read_many(keys: list[str]) -> dict[str, Any]:
    """Entries for `keys` in one round trip; tombstones and cache failures read as misses."""
    try:
        found = backend().get_many(keys)
    except Exception:  # the cache is an optimisation: on failure decide from the database
        log.warning("forward_auth.cache_unavailable", exc_info=True)
        return {}
    return {k: v for k, v in found.items() if v != TOMBSTONE}


def read(key: str) -> Any:
    try:
        value = backend().get(key)
    except Exception:
        log.warning("forward_auth.cache_unavailable", exc_info=True)
        return None
    return None if value == TOMBSTONE else value


def fill(key: str, value: Any, seconds: float) -> None:
    """Store a freshly computed entry unless one (or a tombstone) is already there."""
    seconds = int(seconds)
    if seconds <= 0:
        return
    try:
        backend().add(key, value, seconds)
    except Exception:
        log.warning("forward_auth.cache_unavailable", exc_info=True)


def invalidate(*keys: str) -> None:
    """Replace entries with tombstones; the next read goes to the database."""
    if not keys:
        return
    try:
        backend().set_many({k: TOMBSTONE for k in keys}, hold_seconds())
    except Exception:
        # Not swallowed silently: a failed invalidation leaves a stale decision for at most
        # the entry's lifetime, which operators must hear about.
        log.error("forward_auth.invalidation_failed", keys=keys, exc_info=True)


# --- what the rest of the platform calls (through the hooks registered in apps.py) ------------

def forget_session(slug: str) -> None:
    """A session's status, upstream or owner changed."""
    invalidate(slug_key(slug))


def forget_user(user_id: int) -> None:
    """A user's role, entitlement, password or activation changed."""
    invalidate(user_key(user_id))


def forget_token(token_hash: str) -> None:
    """A personal API token was revoked (or rotated)."""
    invalidate(token_key(token_hash))


def forget_session_key(session_key: str) -> None:
    """A cookie session ended (logout)."""
    invalidate(cookie_key(session_key))
