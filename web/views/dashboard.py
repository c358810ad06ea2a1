"""The dashboard: current sessions on each surface the user may use, recent submissions;
a short landing page for visitors who are not signed in."""
from __future__ import annotations

from django.views.decorators.http import require_GET

from competitions.models import Submission
from medforge.ops.flags import maintenance_on
from sessions_app import selectors as session_selectors
from sessions_app.models import ACTIVE_STATUSES, Session

from ..pages import member_page, page
from ..surface import EXTERNAL, INTERNAL


@require_GET
def dashboard(request):
    if not request.user.is_authenticated:
        return page(request, "web/landing.html")
    return _dashboard(request)


@member_page
def _dashboard(request):
    user = request.user
    exposures = [EXTERNAL] + ([INTERNAL] if user.may_use_internal else [])
    surfaces = []
    for exposure in exposures:
        active = (Session.objects.select_related("pack", "gpu")
                  .filter(owner=user, exposure=exposure, status__in=ACTIVE_STATUSES)
                  .order_by("-created_at"))
        surfaces.append({
            "exposure": exposure,
            "here": exposure == request.exposure,
            "sessions": [{"session": s, "ide_url": s.ide_url}
                         for s in active],
        })
    recent = (Submission.objects.select_related("competition", "official_score")
              .filter(user=user, competition__exposure=request.exposure)
              .order_by("-created_at")[:8])
    snapshots = list(session_selectors.snapshots_for_user(user=user)[:5])
    return page(request, "web/dashboard.html", {
        "surfaces": surfaces, "recent": recent, "snapshots": snapshots,
        "maintenance": maintenance_on(),
    })
