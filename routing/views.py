"""`GET /api/v2/auth/session-proxy` as a routed view: documents the endpoint in the OpenAPI
schema and answers when the short-circuit middleware is not installed. Both call the same
`routing.middleware.answer`."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from .middleware import UPSTREAM_HEADER, answer


class SessionProxyView(APIView):
    # The decision authenticates by itself (cookie or Bearer); DRF must not refuse first.
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="auth_session_proxy",
        tags=["auth"],
        summary="Forward-auth check for a session host (called by Caddy)",
        description=(
            "Decides a request to `s-<slug>.(external|internal).<base>` from its Host header "
            "and the caller's cookie or Bearer token: 401 no valid credentials, 404 not a "
            "session host / no running session / other exposure, 403 internal without "
            "entitlement or not the owner (admins pass), 200 with `X-Upstream`. The body of a "
            "200 is empty."
        ),
        parameters=[
            OpenApiParameter(UPSTREAM_HEADER, str, OpenApiParameter.HEADER, response=[200],
                             description="host:port of the session's IDE"),
        ],
        responses={
            200: OpenApiResponse(description="Allowed; the upstream is in X-Upstream."),
            401: OpenApiResponse(description="No valid credentials"),
            403: OpenApiResponse(description="Not the owner, or internal without entitlement"),
            404: OpenApiResponse(description="Not a session host, or no running session"),
            503: OpenApiResponse(description="Access cannot be checked (database down)"),
        },
    )
    def get(self, request):
        return answer(request._request)
