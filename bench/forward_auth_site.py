"""Bench-only Django settings and URLconf for bench/forward_auth.py (never used by the platform).

The platform's settings and URLs, plus two comparison views served by the same gunicorn:
`/bench/noop` (a Django no-op view behind the full middleware chain) and `/bench/naive` (the
session-proxy decision done the straightforward way: Django session and user loaded from the
database on every request, behind the full middleware chain).
"""
from __future__ import annotations

from medforge.settings import *  # noqa: F403
from medforge.settings import BASE_DOMAIN, SESSION_COOKIE_NAME

ROOT_URLCONF = "forward_auth_site"


def noop(request):
    from django.http import HttpResponse

    return HttpResponse(b"", content_type="text/plain")


def naive(request):
    """SPEC §5's decision with no cache: DB session → user → session row, every request."""
    import re

    from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.http import HttpResponse
    from django.utils.crypto import constant_time_compare

    from medforge.accounts.models import User
    from sessions_app.models import Session

    store = SessionStore(request.COOKIES.get(SESSION_COOKIE_NAME))
    user = User.objects.filter(pk=store.get(SESSION_KEY), is_active=True).first()
    if user is None or not constant_time_compare(store.get(HASH_SESSION_KEY, ""),
                                                 user.get_session_auth_hash()):
        return HttpResponse(status=401)
    match = re.match(r"^s-([a-z2-7]{8})\.(external|internal)\." + re.escape(BASE_DOMAIN),
                     request.META.get("HTTP_HOST", ""))
    if match is None:
        return HttpResponse(status=404)
    session = Session.objects.filter(slug=match.group(1), status="running").first()
    if session is None or session.exposure != match.group(2):
        return HttpResponse(status=404)
    if session.exposure == "internal" and not user.may_use_internal:
        return HttpResponse(status=403)
    if session.owner_id != user.pk and not user.is_staff:
        return HttpResponse(status=403)
    response = HttpResponse(b"", content_type="text/plain")
    response["X-Upstream"] = session.upstream
    return response


def __getattr__(name: str):
    # The URLconf is built on first use: at settings-import time the apps are not ready yet.
    if name != "urlpatterns":
        raise AttributeError(name)
    from django.urls import include, path

    global urlpatterns
    urlpatterns = [path("bench/noop", noop), path("bench/naive", naive),
                   path("", include("medforge.urls"))]
    return urlpatterns
