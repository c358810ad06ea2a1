"""A fake MedForge API on httpx.MockTransport: routes by method and path, answers with the
platform's envelope or problem documents, and records every request."""
from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx

BASE = "https://medforge.test"


def meta(**extra) -> dict:
    return {"request_id": str(uuid.uuid4()), "api_version": "v2",
            "timestamp": "2026-01-02T10:00:00Z", "limit": None, "next_cursor": None,
            "has_more": None, **extra}


def envelope(data: Any, status: int = 200, **meta_extra) -> httpx.Response:
    return httpx.Response(status, json={"data": data, "meta": meta(**meta_extra)})


def page(items: list, *, next_cursor: str | None = None, limit: int = 50) -> httpx.Response:
    return envelope(items, limit=limit, next_cursor=next_cursor, has_more=next_cursor is not None)


def problem(status: int, code: str, detail: str, *, request_id: str = "req-0001",
            headers: dict | None = None, **extra) -> httpx.Response:
    doc = {"type": f"https://medforge.dev/problems/{code}", "title": code.replace("_", " "),
           "status": status, "detail": detail, "instance": "/api/v2/x", "code": code,
           "request_id": request_id, **extra}
    return httpx.Response(status, content=json.dumps(doc).encode(),
                          headers={"Content-Type": "application/problem+json",
                                   "X-Request-Id": request_id, **(headers or {})})


def sse(*events: tuple[str, str | None, Any], retry: int | None = 2000) -> httpx.Response:
    """events: (event name, id, payload) → a text/event-stream body."""
    parts = [f"retry: {retry}\n\n"] if retry is not None else []
    for name, event_id, payload in events:
        head = f"id: {event_id}\n" if event_id is not None else ""
        parts.append(f"{head}event: {name}\ndata: {json.dumps(payload)}\n\n")
    return httpx.Response(200, content="".join(parts).encode(),
                          headers={"Content-Type": "text/event-stream"})


def session(status: str = "running", *, sid: str = "5b0f6d3e-1c1a-4a53-9a55-0d7c5e1f2a01",
            slug: str = "abcd2345", error: str = "", snapshots: list | None = None) -> dict:
    return {
        "id": sid, "slug": slug, "exposure": "external",
        "pack": {"id": "p1", "slug": "default", "name": "Default"},
        "gpu": {"index": 0}, "status": status, "host": f"s-{slug}.external.medforge.test",
        "ide_url": f"https://s-{slug}.external.medforge.test/" if status == "running" else None,
        "created_at": "2026-01-02T10:00:00Z", "started_at": None, "stop_requested_at": None,
        "stopped_at": None, "error_message": error, "restored_from": None,
        "snapshots": snapshots or [],
    }


def event(event_id: int, kind: str, message: str = "") -> dict:
    return {"id": event_id, "at": "2026-01-02T10:00:01Z", "kind": kind, "message": message,
            "data": {}}


Handler = Callable[[httpx.Request], httpx.Response] | httpx.Response | list


class FakeApi:
    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern, Handler]] = []
        self.requests: list[httpx.Request] = []
        self.transport = httpx.MockTransport(self._handle)

    def add(self, method: str, path: str, handler: Handler) -> FakeApi:
        """path: exact API path after /api/v2 (regex allowed); handler: a response, a list of
        responses (one per call, the last repeats) or a callable(request)."""
        self.routes.append((method.upper(), re.compile("^/api/v2" + path + "$"), handler))
        return self

    def _handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        for method, pattern, handler in self.routes:
            if method == request.method and pattern.match(request.url.path):
                if isinstance(handler, list):
                    response = handler.pop(0) if len(handler) > 1 else handler[0]
                elif callable(handler):
                    response = handler(request)
                else:
                    response = handler
                return response
        return problem(404, "not_found", f"fake API has no route {request.method} {request.url.path}")

    def calls(self, method: str, path: str) -> list[httpx.Request]:
        pattern = re.compile("^/api/v2" + path + "$")
        return [r for r in self.requests if r.method == method and pattern.match(r.url.path)]
