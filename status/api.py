"""GET /api/v2/status: the platform at a glance, for the public status page and operators."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors
from .serializers import StatusSerializer


class StatusView(APIView):
    """Public; a signed-in administrator also gets user and submission counts."""

    permission_classes = (AllowAny,)

    @extend_schema(
        responses=StatusSerializer, auth=[],
        summary="Platform status",
        description="GPUs (in use, free, disabled, NVML figures where available), sessions by "
        "state, Celery queue depths, workspace storage and pool health, build version and "
        "commit. Administrators also get `users` and `submissions` counts.",
    )
    def get(self, request):
        staff = bool(request.user and request.user.is_authenticated and request.user.is_staff)
        data = selectors.platform_status(include_private=staff)
        response = Response(StatusSerializer(data).data)
        response["Cache-Control"] = "no-store"
        return response
