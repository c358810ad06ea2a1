"""Writes for accounts: sign-up, login with throttling, profile changes, tokens, audit, admin.

Each service keeps its invariant in one transaction; cache invalidation for forward auth runs
on commit through medforge.accounts.hooks.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate, login, logout
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from medforge.api import ratelimit
from medforge.api.clientip import client_ip
from medforge.api.problems import Problem

from . import hooks
from .models import ApiToken, AuditLog, User
from .tokens import display_prefix, hash_secret, new_secret


def audit_record(
    *, actor: User | None, action: str, target: Any = None, data: dict | None = None,
    request=None,
) -> AuditLog:
    """Append one audit row (never updated or deleted by the platform)."""
    return AuditLog.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        action=action,
        target_type=target.__class__.__name__.lower() if target is not None else "",
        target_id=str(getattr(target, "pk", "") or "") if target is not None else "",
        data=data or {},
        ip=client_ip(request) if request is not None else None,
        request_id=getattr(request, "request_id", "") or "",
    )


def _password_problems(password: str, user: User | None) -> list[dict]:
    try:
        validate_password(password, user=user)
    except DjangoValidationError as exc:
        return [{"field": "password", "message": m, "code": "password_invalid"} for m in exc.messages]
    return []


def user_signup(*, request, email: str, password: str, handle: str, display_name: str = "") -> User:
    """Create an account and sign it in. Rate limited per client address; emails are
    case-insensitively unique."""
    ratelimit.enforce("signup", client_ip(request), settings.RATE_LIMIT_SIGNUP)
    email = User.objects.normalize_email(email).lower()
    handle = handle.lower()
    probe = User(email=email, handle=handle, display_name=display_name)
    problems = _password_problems(password, probe)
    if problems:
        raise Problem("validation_error", problems[0]["message"], errors=problems)
    if User.objects.filter(email__iexact=email).exists():
        raise Problem("email_taken", "An account with this email exists.")
    if User.objects.filter(handle=handle).exists():
        raise Problem("handle_taken", f"The handle {handle!r} is taken.")
    try:
        with transaction.atomic():
            user = User.objects.create_user(
                email=email, password=password, handle=handle, display_name=display_name
            )
    except IntegrityError:  # lost a race with a concurrent sign-up
        raise Problem("email_taken", "An account with this email or handle exists.") from None
    audit_record(actor=user, action="user.signup", target=user, request=request)
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return user


def user_login(*, request, email: str, password: str) -> User:
    """Check credentials and start a cookie session.

    Every attempt counts against the client address (10/minute); failures also count against
    the account, so a distributed guesser is slowed too.
    """
    ip = client_ip(request)
    ratelimit.enforce("login", ip, settings.RATE_LIMIT_LOGIN)
    account_key = (email or "").strip().lower()
    allowed, retry_after = ratelimit.peek(
        "login-fail", account_key, settings.RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT
    )
    if not allowed:
        raise Problem(
            "rate_limited",
            f"Too many failed logins for this account; try again in {retry_after} s.",
            headers={"Retry-After": str(retry_after)}, retry_after=retry_after,
        )
    user = authenticate(request, email=account_key, password=password)
    if user is None:
        ratelimit.hit("login-fail", account_key, settings.RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT)
        AuditLog.objects.create(action="auth.login_failed", data={"email": account_key[:254]},
                                ip=ip, request_id=getattr(request, "request_id", ""))
        raise Problem("invalid_credentials", "The email or password is wrong.")
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    audit_record(actor=user, action="auth.login", target=user, request=request)
    return user


def user_logout(*, request) -> None:
    """End the cookie session. Forward auth forgets it through the `user_logged_out` receiver
    (medforge.accounts.apps), which also covers django-admin's own logout."""
    user = request.user if request.user.is_authenticated else None
    logout(request)
    if user is not None:
        audit_record(actor=user, action="auth.logout", target=user, request=request)


def _bump_auth_version(user: User) -> None:
    User.objects.filter(pk=user.pk).update(auth_version=F("auth_version") + 1)
    user_id = user.pk
    transaction.on_commit(lambda: hooks.user_credentials_changed(user_id))


@transaction.atomic
def user_update(*, request, user: User, data: dict) -> User:
    """Change own profile. A new password needs the current one and passes the validators."""
    fields: list[str] = []
    if "email" in data and data["email"].lower() != user.email:
        email = User.objects.normalize_email(data["email"]).lower()
        if User.objects.filter(email__iexact=email).exclude(pk=user.pk).exists():
            raise Problem("email_taken", "An account with this email exists.")
        user.email = email
        fields.append("email")
    if "handle" in data and data["handle"].lower() != user.handle:
        handle = data["handle"].lower()
        if User.objects.filter(handle=handle).exclude(pk=user.pk).exists():
            raise Problem("handle_taken", f"The handle {handle!r} is taken.")
        user.handle = handle
        fields.append("handle")
    if "display_name" in data:
        user.display_name = data["display_name"]
        fields.append("display_name")
    if data.get("password"):
        current = data.get("current_password") or ""
        if not user.check_password(current):
            raise Problem(
                "validation_error", "The current password is wrong.",
                errors=[{"field": "current_password", "message": "The current password is wrong.",
                         "code": "wrong_password"}],
            )
        problems = _password_problems(data["password"], user)
        if problems:
            raise Problem("validation_error", problems[0]["message"], errors=problems)
        user.set_password(data["password"])
        fields.append("password")
    if fields:
        try:
            user.save(update_fields=fields)
        except IntegrityError:  # lost a race with a concurrent change
            raise Problem("email_taken", "That email or handle is taken.") from None
    if "password" in fields:
        _bump_auth_version(user)
        audit_record(actor=user, action="user.password_changed", target=user, request=request)
        # Keep the session that made the change signed in; others lose validity.
        from django.contrib.auth import update_session_auth_hash

        update_session_auth_hash(request, user)
    return user


def token_create(*, user: User, name: str, expires_at: datetime | None = None,
                 request=None) -> tuple[ApiToken, str]:
    """A new token; returns (row, secret). The secret is never stored nor shown again."""
    if expires_at is not None and expires_at <= timezone.now():
        raise Problem("validation_error", "expires_at must be in the future.",
                      errors=[{"field": "expires_at", "message": "Must be in the future.",
                               "code": "invalid"}])
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).first()
        live = ApiToken.objects.filter(user=user, revoked_at__isnull=True).count()
        if live >= settings.API_TOKEN_MAX_PER_USER:
            raise Problem("token_limit_reached",
                          f"At most {settings.API_TOKEN_MAX_PER_USER} active tokens; revoke one.")
        secret = new_secret()
        token = ApiToken.objects.create(
            user=user, name=name, prefix=display_prefix(secret), token_hash=hash_secret(secret),
            expires_at=expires_at,
        )
        audit_record(actor=user, action="token.created", target=token,
                     data={"name": name}, request=request)
    return token, secret


def token_revoke(*, token: ApiToken, by: User, request=None) -> ApiToken:
    """Revoke now; forward-auth's cached decision for it is dropped on commit."""
    with transaction.atomic():
        changed = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        token.refresh_from_db()
        if changed:
            audit_record(actor=by, action="token.revoked", target=token, request=request)
            token_hash = token.token_hash
            transaction.on_commit(lambda: hooks.token_revoked(token_hash))
    return token


def token_rotate(*, token: ApiToken, by: User, request=None) -> tuple[ApiToken, str]:
    """Replace a token with a new secret (same name and expiry); the old one stops at once."""
    if not token.is_usable():
        raise Problem("token_not_found", "Only an active token can be rotated.")
    with transaction.atomic():
        token_revoke(token=token, by=by, request=request)
        secret = new_secret()
        new = ApiToken.objects.create(
            user=token.user, name=token.name, prefix=display_prefix(secret),
            token_hash=hash_secret(secret), expires_at=token.expires_at,
        )
        audit_record(actor=by, action="token.rotated", target=new,
                     data={"replaces": str(token.pk)}, request=request)
    return new, secret


def admin_password_set(*, actor: User, user: User, request=None) -> None:
    """Record that an operator set (or disabled) a user's password in django-admin: the
    user's other cookie sessions end, in forward auth too, and the change is audited."""
    with transaction.atomic():
        _bump_auth_version(user)
        audit_record(actor=actor, action="admin.password_set", target=user, request=request)


def user_delete(*, actor: User, user: User, request=None) -> None:
    """Delete an account (django-admin); audited, and its cookies and tokens stop opening
    session hosts on commit."""
    with transaction.atomic():
        user_id = user.pk
        audit_record(actor=actor, action="admin.user_deleted", target=user,
                     data={"email": user.email}, request=request)
        user.delete()
        transaction.on_commit(lambda: hooks.user_credentials_changed(user_id))


def token_delete(*, token: ApiToken, by: User, request=None) -> None:
    """Delete a token row (django-admin); like a revocation it stops working at once."""
    with transaction.atomic():
        token_hash = token.token_hash
        audit_record(actor=by, action="token.deleted", target=token,
                     data={"user": token.user_id, "name": token.name}, request=request)
        token.delete()
        transaction.on_commit(lambda: hooks.token_revoked(token_hash))


@transaction.atomic
def admin_user_update(*, actor: User, user: User, data: dict, request=None) -> User:
    """Change role, INTERNAL entitlement or session limit; always audited."""
    user = User.objects.select_for_update().get(pk=user.pk)
    changes: dict[str, list] = {}
    for field in ("is_staff", "can_use_internal", "max_concurrent_sessions", "is_active"):
        if field in data and getattr(user, field) != data[field]:
            changes[field] = [getattr(user, field), data[field]]
            setattr(user, field, data[field])
    if changes:
        user.save(update_fields=list(changes))
        _bump_auth_version(user)
        audit_record(actor=actor, action="admin.user_updated", target=user, data=changes,
                     request=request)
    return user
