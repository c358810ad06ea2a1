"""Operations routes under /api/v2/ (/healthz, /api/ready and /metrics live at the root)."""
from django.urls import path

from . import api

urlpatterns = [
    path("status", api.StatusView.as_view(), name="api-status"),
]
