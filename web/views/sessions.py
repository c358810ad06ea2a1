"""Sessions pages: start with a pack choice, live start/stop progress from the session's
events, the "Open IDE" link, stop with confirmation, history with snapshots and restore."""
from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from medforge.api.problems import Problem
from medforge.ops.flags import maintenance_on
from sessions_app import selectors as session_selectors
from sessions_app import services as session_services
from sessions_app.models import ACTIVE_STATUSES, Pack, Session, SessionStatus

from ..forms import SessionStartForm
from ..pages import apply_problem, member_page, page, problem_text

HISTORY_PAGE_SIZE = 20
# Statuses in which the page keeps polling: something is about to change by itself.
MOVING = (SessionStatus.STARTING, SessionStatus.STOPPING)


def _packs(exposure: str) -> list[Pack]:
    return list(session_selectors.packs_offered(exposure=exposure))


def _visible_session(request, session_id) -> Session:
    """The session if the caller may see it on this surface (owner or admin); 404 otherwise,
    also for another surface's session, so ids do not leak across surfaces."""
    session = session_selectors.session_visible(user=request.user, exposure=request.exposure,
                                                session_id=session_id)
    if session is None:
        raise Http404("No such session")
    return session


def _live_context(session: Session) -> dict:
    events = list(session_selectors.session_events(session=session))
    return {
        "session": session,
        "events": events,
        "moving": session.status in MOVING,
        "ide_url": session.ide_url,
        "snapshots": list(session_selectors.snapshots_for_session(session=session)),
    }


@member_page
@require_GET
def session_list(request):
    exposure = request.exposure
    user = request.user
    mine = session_selectors.sessions_for_user(user=user, exposure=exposure)
    active = [s for s in mine if s.status in ACTIVE_STATUSES]
    history_qs = mine.exclude(status__in=ACTIVE_STATUSES).prefetch_related("snapshots")
    history = Paginator(history_qs, HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    packs = _packs(exposure)
    active_total = session_selectors.active_session_count(user=user)
    return page(request, "web/sessions.html", {
        "active": [_live_context(s) for s in active],
        "history": history,
        "form": SessionStartForm(packs=packs),
        "packs": packs,
        "maintenance": maintenance_on(),
        "active_total": active_total,
        "at_limit": active_total >= user.max_concurrent_sessions,
    })


@member_page
@require_POST
def session_start(request):
    packs = _packs(request.exposure)
    form = SessionStartForm(request.POST, packs=packs)
    if not form.is_valid():
        messages.error(request, "Choose one of the offered packs.")
        return redirect("web:sessions")
    try:
        session = session_services.session_create(
            user=request.user, exposure=request.exposure, pack=form.cleaned_data["pack"])
    except Problem as problem:
        apply_problem(request, problem)
        return redirect("web:sessions")
    messages.success(request, f"Session s-{session.slug} is starting on GPU {session.gpu.index}.")
    return redirect("web:sessions-detail", session_id=session.pk)


@member_page
@require_GET
def session_detail(request, session_id):
    session = _visible_session(request, session_id)
    return page(request, "web/session_detail.html", _live_context(session))


@member_page
@require_GET
def session_live(request, session_id):
    """The live part of a session's page as an HTML fragment (polled by medforge.js)."""
    session = _visible_session(request, session_id)
    response = page(request, "web/_session_live.html", _live_context(session))
    response["Cache-Control"] = "no-store"
    return response


@member_page
@require_http_methods(["GET", "POST"])
def session_stop(request, session_id):
    """GET asks for confirmation (works without JavaScript); POST records the stop intent."""
    session = _visible_session(request, session_id)
    if request.method == "GET":
        return page(request, "web/session_stop.html", {"session": session})
    try:
        session, outcome = session_services.session_request_stop(session=session, by=request.user)
    except Problem as problem:
        apply_problem(request, problem)
    else:
        messages.info(request, {
            "stopping": f"Stopping s-{session.slug}: the workspace is snapshotted, then the "
                        "container is removed.",
            "already stopping": f"s-{session.slug} is already stopping.",
        }.get(outcome, f"s-{session.slug} has already ended."))
    return redirect("web:sessions-detail", session_id=session.pk)


@member_page
@require_POST
def snapshot_restore(request, snapshot_id):
    snapshot = session_selectors.snapshot_visible(user=request.user, snapshot_id=snapshot_id,
                                                  exposure=request.exposure)
    if snapshot is None:
        raise Http404("No such snapshot")
    try:
        session = session_services.session_restore(snapshot=snapshot, by=request.user,
                                                   exposure=request.exposure)
    except Problem as problem:
        messages.error(request, problem_text(problem))
        return redirect("web:sessions-detail", session_id=snapshot.session_id)
    messages.success(request, f"Restoring {snapshot.name} into the new session s-{session.slug}.")
    return redirect("web:sessions-detail", session_id=session.pk)
