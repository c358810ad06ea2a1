"""The `{data, meta}` success envelope, applied at render time so views return plain data."""
from __future__ import annotations

from datetime import UTC, datetime

from rest_framework.renderers import JSONRenderer

from .problems import PROBLEM_CONTENT_TYPE


def make_meta(request, *, limit=None, next_cursor=None, has_more=None) -> dict:
    return {
        "request_id": getattr(request, "request_id", None),
        "api_version": "v2",
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "limit": limit,
        "next_cursor": next_cursor,
        "has_more": has_more,
    }


class EnvelopeJSONRenderer(JSONRenderer):
    media_type = "application/json"
    format = "json"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        renderer_context = renderer_context or {}
        response = renderer_context.get("response")
        request = renderer_context.get("request")
        if response is None:
            return super().render(data, accepted_media_type, renderer_context)
        if response.status_code == 204:
            return b""
        if response.status_code >= 400 or response.get("Content-Type", "").startswith(
            PROBLEM_CONTENT_TYPE
        ):
            response.content_type = PROBLEM_CONTENT_TYPE
            response["Content-Type"] = PROBLEM_CONTENT_TYPE
            return super().render(data, accepted_media_type, renderer_context)
        if getattr(response, "enveloped", False):
            return super().render(data, accepted_media_type, renderer_context)
        return super().render(
            {"data": data, "meta": make_meta(request)}, accepted_media_type, renderer_context
        )
