"""The forward-auth short-circuit: answers `GET /api/v2/auth/session-proxy` before any other
middleware runs.

It sits first in settings.MIDDLEWARE. Caddy calls this endpoint for every request to a session
host (a code-server page load is hundreds), so it skips what the decision does not need: no
session or auth middleware, no CSRF, no URL resolution, no DRF, no database on a warm path. It
still gives every answer an `X-Request-Id`, and every refusal is a (tiny) problem+json body.
"""
from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import structlog
from django.conf import settings
from django.http import HttpResponse

from medforge.api.middleware import request_id_for
from medforge.api.problems import PROBLEM_CONTENT_TYPE, REGISTRY, TYPE_BASE
from medforge.core.hosts import parse_session_host
from medforge.ops.metrics import FORWARD_AUTH_DECISIONS, REQUEST_LATENCY

from .activity import activity_note
from .decision import Decision, forward_auth_decide

log = structlog.get_logger(__name__)

PATH = "/api/v2/auth/session-proxy"
UPSTREAM_HEADER = "X-Upstream"
# On a 401 the edge sends browser navigations here (Caddy reads it; it never reaches a client).
LOGIN_HEADER = "X-Medforge-Login"

# Bound metric children once: labels() per request would cost a dict lookup and a lock.
_DECISIONS = {
    (status, warm): FORWARD_AUTH_DECISIONS.labels(status=str(status),
                                                  path="hit" if warm else "miss")
    for status in (200, 401, 403, 404, 503) for warm in (True, False)
}
_LATENCY = {
    cls: REQUEST_LATENCY.labels(route=PATH, method="GET", status_class=cls)
    for cls in ("2xx", "4xx", "5xx")
}


def login_url(request) -> str:
    """The platform's login page on the same edge (scheme and port of the request), with the
    IDE the browser asked for as `next` when the host is a session host."""
    host = request.META.get("HTTP_HOST", "")
    scheme = request.META.get("HTTP_X_FORWARDED_PROTO", "")
    scheme = scheme if scheme in ("http", "https") else settings.PUBLIC_SCHEME
    _, sep, port = host.rpartition(":")
    port = f":{port}" if sep and port.isdigit() else ""
    url = f"{scheme}://{settings.BASE_DOMAIN}{port}{settings.LOGIN_URL}"
    if parse_session_host(host) is None:
        return url
    uri = request.META.get("HTTP_X_FORWARDED_URI", "/")
    if not uri.startswith("/") or uri.startswith("//"):
        uri = "/"
    return f"{url}?{urlencode({'next': f'{scheme}://{host}{uri}'})}"


def decision_response(request, decision: Decision, request_id: str) -> HttpResponse:
    """200 with `X-Upstream` and an empty body, or a problem+json refusal."""
    if decision.status == 200:
        response = HttpResponse(b"", content_type="text/plain")
        response[UPSTREAM_HEADER] = decision.upstream
    else:
        problem = REGISTRY[decision.code]
        body = {
            "type": TYPE_BASE + decision.code,
            "title": problem.title,
            "status": decision.status,
            "detail": decision.detail,
            "instance": request.path,
            "code": decision.code,
            "request_id": request_id,
        }
        response = HttpResponse(json.dumps(body, separators=(",", ":")),
                                status=decision.status, content_type=PROBLEM_CONTENT_TYPE)
        if decision.status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="medforge"'
            response[LOGIN_HEADER] = login_url(request)
    # CommonMiddleware, which would add it, is skipped: without a length neither Caddy nor
    # gunicorn can keep the connection alive, and every check would pay a new TCP connection.
    response["Content-Length"] = str(len(response.content))
    response["X-Request-Id"] = request_id
    # Caddy must not cache a decision, nor may anything between it and Django.
    response["Cache-Control"] = "no-store"
    return response


def answer(request) -> HttpResponse:
    """Decide one forward-auth request and record it (metrics, IDE activity)."""
    started = time.perf_counter()
    # Through the routed view RequestIdMiddleware has already chosen one.
    request_id = getattr(request, "request_id", None) or request_id_for(request)
    try:
        decision = forward_auth_decide(
            host=request.META.get("HTTP_HOST"),
            session_cookie=request.COOKIES.get(settings.SESSION_COOKIE_NAME),
            authorization=request.META.get("HTTP_AUTHORIZATION"),
        )
    except Exception:
        # The database is down (the cache alone cannot prove a cold credential): refuse,
        # never fail open.
        log.exception("forward_auth.failed", request_id=request_id)
        decision = Decision(503, "service_unavailable",
                            "Access cannot be checked right now; retry shortly.", warm=False)
    if decision.status == 200:
        activity_note(decision.slug)
    _DECISIONS[(decision.status, decision.warm)].inc()
    _LATENCY[f"{decision.status // 100}xx"].observe(time.perf_counter() - started)
    return decision_response(request, decision, request_id)


class ForwardAuthMiddleware:
    """First in MIDDLEWARE: answers GET/HEAD on the session-proxy path, passes all else on."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info == PATH and request.method in ("GET", "HEAD"):
            return answer(request)
        return self.get_response(request)
