"""The forward-auth decision of SPEC §5, answered from the cache and filled from the database.

`forward_auth_decide()` is a pure read: it never changes a session or a user. On a warm path it
reads the process's own copy of the cache entries (no query, no network round trip); a miss
reads the shared cache, then the database, and stores what it found for the next request.
"""
from __future__ import annotations

import time
from typing import NamedTuple

from django.conf import settings

from medforge.accounts.authentication import resolve_token
from medforge.accounts.models import ApiToken, User
from medforge.accounts.tokens import hash_secret, token_from_header
from medforge.core.exposure import INTERNAL, entitled
from medforge.core.hosts import parse_session_host
from sessions_app.models import Session, SessionStatus

from . import cache


class Decision(NamedTuple):
    status: int
    code: str            # problem code for 4xx, "ok" for 200
    detail: str
    upstream: str | None = None
    slug: str | None = None
    warm: bool = True    # answered without a database query


class _Cold:
    """Per-decision state: the cache epoch it started with, and whether it needed the
    database (for the hit/miss metric)."""

    __slots__ = ("epoch", "hit")

    def __init__(self, epoch: int | None) -> None:
        self.epoch = epoch
        self.hit = True


def _ok(upstream: str, slug: str, state: _Cold) -> Decision:
    return Decision(200, "ok", "", upstream, slug, state.hit)


def _deny(status: int, code: str, detail: str, state: _Cold, slug: str | None = None) -> Decision:
    return Decision(status, code, detail, None, slug, state.hit)


# --- credentials -------------------------------------------------------------------------------

def _token_from_db(secret: str, key: str, state: _Cold) -> tuple[tuple | None, tuple | None]:
    state.hit = False
    token = resolve_token(secret)
    if token is None:
        # Unknown, revoked and expired tokens never become valid again; a live token of a
        # deactivated account does on reactivation, so only the former are remembered.
        if not ApiToken.objects.filter(
            token_hash=key.removeprefix("fa:t:"), revoked_at__isnull=True, user__is_active=False
        ).exists():
            cache.fill(key, cache.NEGATIVE, cache.negative_seconds(), state.epoch)
        return None, None
    user = token.user
    seconds = cache.credential_seconds()
    expires_ts = 0.0
    if token.expires_at is not None:
        expires_ts = token.expires_at.timestamp()
        seconds = min(seconds, expires_ts - time.time())
    entry = ("t", user.pk, expires_ts)
    cache.fill(key, entry, seconds, state.epoch)
    return entry, _fill_user(user, state)


def _session_user(store):
    """The user a Django session belongs to, verified like django.contrib.auth.get_user
    (backend, active account, session auth hash incl. SECRET_KEY_FALLBACKS) but read-only:
    forward auth never flushes or cycles a session, the platform's own pages do that."""
    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user_model,
        load_backend,
    )
    from django.utils.crypto import constant_time_compare

    try:
        user_id = get_user_model()._meta.pk.to_python(store[SESSION_KEY])
        backend_path = store[BACKEND_SESSION_KEY]
    except (KeyError, ValueError, TypeError):
        return None
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return None
    user = load_backend(backend_path).get_user(user_id)
    session_hash = store.get(HASH_SESSION_KEY)
    if user is None or not session_hash:
        return None
    if constant_time_compare(session_hash, user.get_session_auth_hash()):
        return user
    fallbacks = getattr(user, "get_session_auth_fallback_hash", lambda: ())()
    if any(constant_time_compare(session_hash, h) for h in fallbacks):
        return user
    return None


def _cookie_from_db(session_key: str, key: str, state: _Cold) -> tuple[tuple | None, tuple | None]:
    """Verify a platform cookie (its Django session) and remember the user it names."""
    from importlib import import_module

    state.hit = False
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user = _session_user(store)
    if user is None:
        from django.contrib.auth import SESSION_KEY

        if SESSION_KEY not in store:
            # Unknown, expired or anonymous: Django never promotes such a key to a signed-in
            # one (login cycles it), so the refusal can be remembered. A session of a
            # deactivated user is not remembered: reactivation must work at once.
            cache.fill(key, cache.NEGATIVE, cache.negative_seconds(), state.epoch)
        return None, None
    entry = ("c", user.pk, user.auth_version)
    seconds = min(cache.credential_seconds(), store.get_expiry_age())
    cache.fill(key, entry, seconds, state.epoch)
    return entry, _fill_user(user, state)


def _user_facts(user) -> tuple:
    return (user.auth_version, user.is_active, user.is_staff,
            entitled(exposure=INTERNAL, is_staff=user.is_staff,
                     can_use_internal=user.can_use_internal))


def _fill_user(user, state: _Cold) -> tuple:
    facts = _user_facts(user)
    cache.fill(cache.user_key(user.pk), facts, cache.credential_seconds(), state.epoch)
    return facts


def _user_from_db(user_id: int, state: _Cold) -> tuple | None:
    state.hit = False
    row = (
        User.objects.filter(pk=user_id)
        .values_list("auth_version", "is_active", "is_staff", "can_use_internal")
        .first()
    )
    if row is None:
        return None
    facts = (row[0], row[1], row[2], row[2] or row[3])
    cache.fill(cache.user_key(user_id), facts, cache.credential_seconds(), state.epoch)
    return facts


def _session_from_db(slug: str, state: _Cold) -> tuple:
    state.hit = False
    row = (
        Session.objects.filter(slug=slug)
        .values_list("status", "owner_id", "exposure", "upstream")
        .first()
    )
    if row is None or row[0] != SessionStatus.RUNNING or not row[3]:
        entry = cache.NOT_ROUTABLE
    else:
        entry = (row[1], row[2], row[3])
    cache.fill(cache.slug_key(slug), entry, cache.session_seconds(), state.epoch)
    return entry


# --- the decision ------------------------------------------------------------------------------

def forward_auth_decide(
    *, host: str | None, session_cookie: str | None, authorization: str | None
) -> Decision:
    """Decide one request to a session host, in SPEC §5's order:

    401 no valid credentials · 404 not a session host · 404 no running session with that slug ·
    404 the session's exposure differs from the host's · 403 internal host and the caller is
    neither admin nor entitled · 403 neither owner nor admin · 200 with the session's upstream.

    Invariant: a revoked token, an ended cookie session, a role/entitlement/password change or a
    session state change is seen by the next decision in the process that made the change and,
    in every other process, as soon as the invalidation message reaches it (the hooks fire on
    commit; see routing.cache); nothing the client sends besides Host and its credentials
    influences the answer.
    """
    state = _Cold(cache.current_epoch())
    target = parse_session_host(host)
    secret = token_from_header(authorization)
    if secret is not None and len(secret) <= 200:
        cred_key = cache.token_key(hash_secret(secret))
    elif session_cookie and len(session_cookie) <= 128:
        cred_key = cache.cookie_key(session_cookie)
        secret = None
    else:
        return _deny(401, "not_authenticated", "Sign in or send an API token.", state)

    skey = cache.slug_key(target.slug) if target else None
    found = cache.read_many([cred_key, skey] if skey else [cred_key], state.epoch)

    # 1. credentials → user
    cred, facts = found.get(cred_key), None
    if cred is None:
        if secret is not None:
            cred, facts = _token_from_db(secret, cred_key, state)
        else:
            cred, facts = _cookie_from_db(session_cookie, cred_key, state)
    if (cred is None or cred == cache.NEGATIVE) and secret is not None and session_cookie:
        # An Authorization header that is not a valid platform token (the IDE's own, say)
        # does not hide a valid cookie.
        secret, cred_key = None, cache.cookie_key(session_cookie)
        cred, facts = cache.read(cred_key, state.epoch), None
        if cred is None:
            cred, facts = _cookie_from_db(session_cookie, cred_key, state)
    if cred is None or cred == cache.NEGATIVE:
        return _deny(401, "not_authenticated", "Sign in or send an API token.", state)

    kind, user_id, extra = cred
    if kind == "t" and extra and extra <= time.time():
        return _deny(401, "invalid_token", "The token has expired.", state)
    if facts is None:
        facts = (cache.read(cache.user_key(user_id), state.epoch)
                 or _user_from_db(user_id, state))
    if facts is not None and kind == "c" and extra != facts[0]:
        # Password, role or activation changed since this cookie was verified: verify it
        # again. The tombstone keeps this cookie on the database path for a few seconds, so
        # no concurrent stale fill can win.
        cache.invalidate(cred_key)
        cred, facts = _cookie_from_db(session_cookie, cred_key, state)
        if cred is None:
            return _deny(401, "not_authenticated", "The sign-in is no longer valid.", state)
    if facts is None or not facts[1]:
        return _deny(401, "not_authenticated", "The account is not active.", state)
    _, _, is_admin, may_use_internal = facts

    # 2. host
    if target is None:
        return _deny(404, "not_found", "This host does not name a session.", state)
    # 3. a running session with that slug
    sess = found.get(skey)
    if sess is None:
        sess = _session_from_db(target.slug, state)
    if not sess:
        return _deny(404, "session_not_found", "No running session at this host.", state,
                     target.slug)
    owner_id, exposure, upstream = sess
    # 4. exposure
    if exposure != target.exposure:
        return _deny(404, "session_not_found", "No running session at this host.", state,
                     target.slug)
    # 5. internal entitlement
    if exposure == INTERNAL and not may_use_internal:
        return _deny(403, "internal_access_required",
                     "INTERNAL sessions need the internal entitlement.", state, target.slug)
    # 6. owner or admin
    if owner_id != user_id and not is_admin:
        return _deny(403, "permission_denied", "This session belongs to someone else.", state,
                     target.slug)
    return _ok(upstream, target.slug, state)
