"""Request ids, the Origin guard for cookie-authenticated writes, and problem+json for /api."""
from __future__ import annotations

import re
import uuid
from urllib.parse import urlsplit

import structlog
from django.conf import settings
from django.http import HttpResponseForbidden

from .problems import PROBLEM_CONTENT_TYPE, Problem, problem_json_response, to_problem

log = structlog.get_logger(__name__)

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{7,127}$")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def request_id_for(request) -> str:
    """A valid client-sent X-Request-Id, otherwise a new uuid4."""
    incoming = request.META.get("HTTP_X_REQUEST_ID", "")
    return incoming if _REQUEST_ID_RE.match(incoming) else str(uuid.uuid4())


def is_api_path(path: str) -> bool:
    return path.startswith("/api/")


class RequestIdMiddleware:
    """Keeps a valid client-sent X-Request-Id, otherwise issues a uuid4; echoes it back."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = request.request_id = request_id_for(request)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            request_id=request_id,
            correlation_id=request.META.get("HTTP_X_CORRELATION_ID", request_id)[:128],
        )
        try:
            response = self.get_response(request)
        finally:
            # Later work on this thread must not log under this request's ids.
            structlog.contextvars.clear_contextvars()
        response["X-Request-Id"] = request_id
        return response


def platform_origin_allowed(value: str) -> bool:
    """True when an Origin/Referer names the base domain or one of its platform hosts.

    Session hosts (`s-*.external|internal.<base>`) serve user-controlled content and are never
    allowed, nor is any foreign host.
    """
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    return parts.hostname.lower() in {h.lower() for h in settings.PLATFORM_HOSTS}


class OriginGuardMiddleware:
    """Refuses state-changing requests carrying ambient credentials from a foreign origin.

    Requests authenticated by a Bearer token carry no ambient credential and are exempt.
    A cookie-carrying write with neither Origin nor Referer is refused: it cannot prove where
    it came from.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method not in SAFE_METHODS and not self._uses_bearer(request):
            origin = request.META.get("HTTP_ORIGIN")
            referer = request.META.get("HTTP_REFERER")
            has_cookie = settings.SESSION_COOKIE_NAME in request.COOKIES
            source = origin if origin and origin != "null" else referer
            if source:
                if not platform_origin_allowed(source):
                    return self._refuse(request, f"Requests from {source!r} may not change state.")
            elif has_cookie or (origin == "null"):
                return self._refuse(request, "A cookie-authenticated write must send Origin.")
        return self.get_response(request)

    @staticmethod
    def _uses_bearer(request) -> bool:
        return request.META.get("HTTP_AUTHORIZATION", "").startswith("Bearer ")

    @staticmethod
    def _refuse(request, detail: str):
        log.info("security.origin_refused", path=request.path,
                 origin=request.META.get("HTTP_ORIGIN"))
        if is_api_path(request.path):
            return problem_json_response(request, Problem("origin_not_allowed", detail))
        return HttpResponseForbidden(detail, content_type="text/plain")


class ApiProblemMiddleware:
    """Under /api nothing but problem+json leaves as an error: Django's 404/405/500 pages and
    any exception a view leaks are translated here."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            is_api_path(request.path)
            and response.status_code >= 400
            and not response.get("Content-Type", "").startswith(PROBLEM_CONTENT_TYPE)
        ):
            code = {404: "not_found", 405: "method_not_allowed", 403: "permission_denied",
                    400: "bad_request", 413: "payload_too_large"}.get(response.status_code)
            if code is None:
                code = "internal_error" if response.status_code >= 500 else "bad_request"
            problem = Problem(code, status=response.status_code)
            if code == "not_found":
                problem.detail = f"No API route matches {request.path}."
            new = problem_json_response(request, problem)
            for header in ("Allow", "Retry-After"):
                if header in response:
                    new[header] = response[header]
            return new
        return response

    def process_exception(self, request, exception):
        if not is_api_path(request.path):
            return None
        problem = to_problem(exception)
        if problem is None:
            log.exception("api.unhandled_exception", path=request.path)
            problem = Problem("internal_error", "An unexpected error occurred; it has been logged.")
        return problem_json_response(request, problem)
