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

In front of the shared cache each process keeps its own copy of the entries it used (L1), so a
warm request makes no network round trip at all. Every invalidation tombstones the shared
entries and then publishes on a Redis channel; a listener thread in every process drops its
whole L1 when a message arrives (and the invalidating process drops its own synchronously).
Entries are tagged with the process's generation read at the start of the request, so a copy
filled from data read before an invalidation can never outlive it. L1 is used only while the
listener is subscribed and has heard Redis answer a ping within the last few seconds; otherwise
(other cache backends, Redis away) every request reads the shared cache, as it would without L1.
"""
from __future__ import annotations

import hashlib
import os
import threading
import time
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


def local_seconds() -> float:
    return float(getattr(settings, "FORWARD_AUTH_LOCAL_CACHE_SECONDS", 30))


def backend():
    return caches["default"]


# --- the per-process copy (L1) and its invalidation channel ------------------------------------

LOCAL_MAX_ENTRIES = 50_000
HEALTHY_WITHIN_SECONDS = 3.0
PING_EVERY_SECONDS = 1.0

# key → (value, generation, expires at monotonic). Dict reads and writes are atomic under the
# GIL, which is all the gthread workers need.
_local: dict[str, tuple[Any, int, float]] = {}
_generation = 0
_listener_pid: int | None = None
_last_pong = 0.0  # monotonic time of the last sign of life of the subscription (0: none)
_listener_lock = threading.Lock()


def _channel() -> str:
    return f"{getattr(backend(), 'key_prefix', '') or 'mf'}:fa:invalidate"


def _redis():
    """The Redis client behind the default cache, or None for other backends."""
    if not type(backend()).__module__.startswith("django_redis"):
        return None
    from django_redis import get_redis_connection

    return get_redis_connection("default")


def drop_local() -> None:
    """Forget every L1 entry of this process (a new generation)."""
    global _generation
    _generation += 1
    _local.clear()


def current_epoch() -> int | None:
    """This process's L1 generation when L1 may be used now, else None (shared cache only)."""
    if _listener_pid != os.getpid():
        _start_listener()
        return None
    if time.monotonic() - _last_pong > HEALTHY_WITHIN_SECONDS:
        return None
    return _generation


def _start_listener() -> None:
    global _listener_pid, _last_pong
    with _listener_lock:
        if _listener_pid == os.getpid():
            return
        # After a fork the parent's listener thread does not exist here: start our own.
        _listener_pid = os.getpid()
        _last_pong = 0.0
        drop_local()
        if _redis() is None:
            return
        threading.Thread(target=_listen, name="forward-auth-invalidations", daemon=True).start()


def _listen() -> None:
    """Subscribe, drop L1 on every message, ping to prove the subscription is alive; on any
    failure drop L1, stop trusting it, and subscribe again."""
    global _last_pong
    backoff = 0.1
    while True:
        pubsub = None
        try:
            pubsub = _redis().pubsub()
            pubsub.subscribe(_channel())
            last_ping = 0.0
            while True:
                now = time.monotonic()
                if now - last_ping >= PING_EVERY_SECONDS:
                    pubsub.ping()
                    last_ping = now
                message = pubsub.get_message(timeout=PING_EVERY_SECONDS / 2)
                if message is None:
                    continue
                kind = message.get("type")
                if kind == "message":
                    drop_local()
                elif kind in ("subscribe", "pong"):
                    if kind == "subscribe":
                        drop_local()  # whatever happened while we were away
                    _last_pong = time.monotonic()
                    backoff = 0.1
        except Exception:
            _last_pong = 0.0
            drop_local()
            log.warning("forward_auth.invalidation_listener_lost", exc_info=True)
            time.sleep(backoff)
            backoff = min(backoff * 2, 5.0)
        finally:
            if pubsub is not None:
                try:
                    pubsub.close()
                except Exception:  # the connection is already gone
                    pass


def _publish() -> None:
    client = _redis()
    if client is not None:
        client.publish(_channel(), b"1")


def _local_get(key: str, epoch: int | None) -> Any:
    entry = _local.get(key)
    if entry is None or epoch is None or entry[1] != epoch or entry[2] < time.monotonic():
        return None
    return entry[0]


def _local_put(key: str, value: Any, epoch: int | None, seconds: float) -> None:
    if epoch is None or value == TOMBSTONE:
        return
    if len(_local) >= LOCAL_MAX_ENTRIES:
        drop_local()
        return
    _local[key] = (value, epoch, time.monotonic() + min(seconds, local_seconds()))


def local_clear() -> None:
    drop_local()


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

def read_many(keys: list[str], epoch: int | None) -> dict[str, Any]:
    """Entries for `keys`: from L1 when current, the rest in one round trip to the shared
    cache. Tombstones and cache failures read as misses."""
    found: dict[str, Any] = {}
    missing = []
    for key in keys:
        value = _local_get(key, epoch)
        if value is None:
            missing.append(key)
        else:
            found[key] = value
    if missing:
        try:
            shared = backend().get_many(missing)
        except Exception:  # the cache is an optimisation: on failure decide from the database
            log.warning("forward_auth.cache_unavailable", exc_info=True)
            return found
        for key, value in shared.items():
            if value != TOMBSTONE:
                found[key] = value
                _local_put(key, value, epoch, local_seconds())
    return found


def read(key: str, epoch: int | None) -> Any:
    return read_many([key], epoch).get(key)


def fill(key: str, value: Any, seconds: float, epoch: int | None) -> None:
    """Store a freshly computed entry unless one (or a tombstone) is already there."""
    seconds = int(seconds)
    if seconds <= 0:
        return
    try:
        stored = backend().add(key, value, seconds)
    except Exception:
        log.warning("forward_auth.cache_unavailable", exc_info=True)
        return
    if stored:
        # Tagged with the epoch read before the database was: an invalidation in between
        # moved the epoch on, so this copy is already stale for every later request.
        _local_put(key, value, epoch, seconds)


def invalidate(*keys: str) -> None:
    """Replace entries with tombstones, then make every process drop its L1 (this one
    synchronously, the others through the channel); the next request reads the database.
    The order matters: a process that drops its copy must not find the old shared entry."""
    if not keys:
        return
    try:
        backend().set_many({k: TOMBSTONE for k in keys}, hold_seconds())
        _publish()
    except Exception:
        # Not swallowed silently: a failed invalidation leaves a stale decision for at most
        # the entry's lifetime, which operators must hear about.
        log.exception("forward_auth.invalidation_failed", keys=keys)
    finally:
        drop_local()


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
