"""DRF authentication: personal API tokens (Bearer) and the platform session cookie.

Identity headers such as X-User-Id are never read anywhere.
"""
from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions

from .models import ApiToken
from .tokens import TOKEN_PREFIX, hash_secret, token_from_header

LAST_USED_RESOLUTION = timedelta(minutes=1)


def resolve_token(secret: str) -> ApiToken | None:
    """The usable token for a secret (with its user), else None. Touches last_used_at at most
    once a minute so the hot path does not write per request."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    token = (
        ApiToken.objects.select_related("user").filter(token_hash=hash_secret(secret)).first()
    )
    now = timezone.now()
    if token is None or not token.is_usable(now) or not token.user.is_active:
        return None
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


class BearerTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        if not header.startswith("Bearer "):
            raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer <token>'.")
        secret = token_from_header(header)
        token = resolve_token(secret) if secret else None
        if token is None:
            raise exceptions.AuthenticationFailed("The token is invalid, expired or revoked.")
        request._request.api_token = token
        return token.user, token

    def authenticate_header(self, request):
        return 'Bearer realm="medforge"'


class CookieSessionAuthentication(authentication.SessionAuthentication):
    """The Django session cookie. CSRF for JSON writes is replaced by the Origin guard
    middleware (medforge.api.middleware), which refuses foreign and session-host origins."""

    def enforce_csrf(self, request):
        return None

    def authenticate_header(self, request):
        # Makes DRF answer 401 (not 403) to anonymous requests.
        return 'Bearer realm="medforge"'
