"""The public status page: GPUs, sessions by state, queues, storage, build; counts of users
and submissions for staff only (the same figures as /api/v2/status)."""
from __future__ import annotations

from django.views.decorators.http import require_GET

from status.selectors import platform_status

from ..pages import page


@require_GET
def status_page(request):
    data = platform_status(include_private=request.user.is_authenticated and request.user.is_staff)
    response = page(request, "web/status.html", {"status": data})
    response["Cache-Control"] = "no-store"
    return response
