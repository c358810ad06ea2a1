"""The one error registry: every API error code with its HTTP status and title.

Errors leave the API as RFC 9457 `application/problem+json` documents. Code raises
`Problem(code, detail=...)`; DRF and Django failures are translated here too, so no HTML page
and no stack trace ever reaches an API client.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf_exc
from rest_framework.response import Response

log = structlog.get_logger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "https://medforge.dev/problems/"


@dataclass(frozen=True)
class ProblemType:
    status: int
    title: str


REGISTRY: dict[str, ProblemType] = {
    # generic
    "bad_request": ProblemType(400, "Bad request"),
    "malformed_json": ProblemType(400, "Malformed JSON body"),
    "invalid_limit": ProblemType(400, "Invalid limit"),
    "invalid_cursor": ProblemType(400, "Invalid cursor"),
    "invalid_filter": ProblemType(400, "Invalid filter"),
    "not_authenticated": ProblemType(401, "Authentication required"),
    "invalid_token": ProblemType(401, "Invalid or expired token"),
    "invalid_credentials": ProblemType(401, "Invalid email or password"),
    "permission_denied": ProblemType(403, "Permission denied"),
    "origin_not_allowed": ProblemType(403, "Origin not allowed"),
    "csrf_failed": ProblemType(403, "CSRF check failed"),
    "admin_required": ProblemType(403, "Administrator role required"),
    "internal_access_required": ProblemType(403, "Internal access required"),
    "not_found": ProblemType(404, "Not found"),
    "method_not_allowed": ProblemType(405, "Method not allowed"),
    "not_acceptable": ProblemType(406, "Not acceptable"),
    "conflict": ProblemType(409, "Conflict"),
    "payload_too_large": ProblemType(413, "Payload too large"),
    "unsupported_media_type": ProblemType(415, "Unsupported media type"),
    "validation_error": ProblemType(422, "Validation failed"),
    "rate_limited": ProblemType(429, "Too many requests"),
    "internal_error": ProblemType(500, "Internal server error"),
    "service_unavailable": ProblemType(503, "Service unavailable"),
    # accounts
    "email_taken": ProblemType(409, "Email already registered"),
    "handle_taken": ProblemType(409, "Handle already taken"),
    "token_limit_reached": ProblemType(409, "Too many API tokens"),
    "token_not_found": ProblemType(404, "Token not found"),
    "user_not_found": ProblemType(404, "User not found"),
    # sessions
    "session_not_found": ProblemType(404, "Session not found"),
    "concurrent_session_limit": ProblemType(409, "Concurrent session limit reached"),
    "no_gpus_available": ProblemType(409, "No GPUs available"),
    "pack_not_found": ProblemType(404, "Pack not found"),
    "pack_deprecated": ProblemType(409, "Pack deprecated"),
    "pack_exposure_mismatch": ProblemType(422, "Pack not offered on this exposure"),
    "maintenance": ProblemType(503, "Maintenance: new sessions are paused"),
    "snapshot_not_found": ProblemType(404, "Snapshot not found"),
    "gpu_not_found": ProblemType(404, "GPU not found"),
    # competitions
    "competition_not_found": ProblemType(404, "Competition not found"),
    "dataset_not_found": ProblemType(404, "Dataset not found"),
    "file_not_found": ProblemType(404, "File not found"),
    "submission_not_found": ProblemType(404, "Submission not found"),
    "submission_too_large": ProblemType(413, "Submission too large"),
    "submission_invalid": ProblemType(422, "Submission invalid"),
    "submission_cap_reached": ProblemType(429, "Daily submission cap reached"),
    "scoring_unavailable": ProblemType(503, "Scoring unavailable"),
}


class Problem(Exception):
    """Raise to answer with a registered problem. `extra` members join the document."""

    def __init__(
        self,
        code: str,
        detail: str | None = None,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        status: int | None = None,
        **extra: Any,
    ) -> None:
        if code not in REGISTRY:
            raise KeyError(f"unregistered problem code {code!r}")
        self.code = code
        self.status = status or REGISTRY[code].status
        self.title = REGISTRY[code].title
        self.detail = detail or self.title
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra
        super().__init__(f"{code}: {self.detail}")


def problem_document(request, problem: Problem) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "type": TYPE_BASE + problem.code,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "instance": request.path if request is not None else None,
        "code": problem.code,
        "request_id": getattr(request, "request_id", None),
    }
    if problem.errors is not None:
        doc["errors"] = problem.errors
    doc.update(problem.extra)
    return doc


def problem_response(request, problem: Problem) -> Response:
    """A DRF response (rendered by the envelope renderer as problem+json)."""
    resp = Response(problem_document(request, problem), status=problem.status,
                    content_type=PROBLEM_CONTENT_TYPE)
    for k, v in problem.headers.items():
        resp[k] = v
    return resp


def problem_json_response(request, problem: Problem) -> JsonResponse:
    """A plain Django response, for middleware and handlers outside DRF."""
    resp = JsonResponse(problem_document(request, problem), status=problem.status,
                        content_type=PROBLEM_CONTENT_TYPE)
    for k, v in problem.headers.items():
        resp[k] = v
    return resp


def _flatten_errors(detail: Any, prefix: str = "") -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            field = key if not prefix else f"{prefix}.{key}"
            if key == "non_field_errors":
                field = prefix or None
            out.extend(_flatten_errors(value, field or ""))
    elif isinstance(detail, list):
        for i, value in enumerate(detail):
            if isinstance(value, (dict, list)):
                out.extend(_flatten_errors(value, f"{prefix}[{i}]" if prefix else str(i)))
            else:
                out.extend(_flatten_errors(value, prefix))
    else:
        out.append({"field": prefix or None, "message": str(detail),
                    "code": getattr(detail, "code", "invalid")})
    return out


def to_problem(exc: Exception) -> Problem | None:
    """Translate a framework exception into a Problem (None: not ours to translate)."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, drf_exc.ParseError):
        return Problem("malformed_json", str(exc.detail))
    if isinstance(exc, drf_exc.ValidationError):
        errors = _flatten_errors(exc.detail)
        detail = "; ".join(
            f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors[:5]
        )
        return Problem("validation_error", detail or "Invalid input", errors=errors)
    if isinstance(exc, drf_exc.NotAuthenticated):
        return Problem("not_authenticated", "Sign in or send an API token.")
    if isinstance(exc, drf_exc.AuthenticationFailed):
        return Problem("invalid_token", str(exc.detail))
    if isinstance(exc, (drf_exc.PermissionDenied, PermissionDenied)):
        detail = str(getattr(exc, "detail", "")) or None
        return Problem("permission_denied", detail)
    if isinstance(exc, (drf_exc.NotFound, Http404)):
        return Problem("not_found", "The resource does not exist.")
    if isinstance(exc, drf_exc.MethodNotAllowed):
        return Problem("method_not_allowed", str(exc.detail))
    if isinstance(exc, drf_exc.NotAcceptable):
        return Problem("not_acceptable", str(exc.detail))
    if isinstance(exc, drf_exc.UnsupportedMediaType):
        return Problem("unsupported_media_type", str(exc.detail))
    if isinstance(exc, drf_exc.Throttled):
        wait = int(exc.wait or 1)
        return Problem("rate_limited", str(exc.detail), headers={"Retry-After": str(wait)})
    if isinstance(exc, RequestDataTooBig):
        return Problem("payload_too_large", "The request body is larger than allowed.")
    if isinstance(exc, drf_exc.APIException):
        return Problem("bad_request", str(exc.detail), status=exc.status_code)
    return None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    request = context.get("request")
    problem = to_problem(exc)
    if problem is None:
        log.exception("api.unhandled_exception", path=getattr(request, "path", None))
        problem = Problem("internal_error", "An unexpected error occurred; it has been logged.")
    return problem_response(request, problem)
