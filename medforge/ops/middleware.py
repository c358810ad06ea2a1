"""Request metrics: latency and rate of every request by route template, method and status.

The route label is the URL pattern (`api/v2/<exposure:exposure>/sessions/<uuid:session_id>`),
never the raw path, so ids cannot explode the label set; unmatched paths share one label.
Kept to a clock read and one histogram observation: it also runs on the forward-auth hot path.
"""
from __future__ import annotations

import time

from .metrics import REQUEST_LATENCY

UNMATCHED = "<unmatched>"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_label(request) -> str:
    match = getattr(request, "resolver_match", None)
    route = getattr(match, "route", None) if match is not None else None
    return route or UNMATCHED


class MetricsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        start = time.perf_counter()
        response = self.get_response(request)
        method = request.method if request.method in _METHODS else "OTHER"
        REQUEST_LATENCY.labels(
            route=route_label(request), method=method,
            status_class=f"{response.status_code // 100}xx",
        ).observe(time.perf_counter() - start)
        return response
