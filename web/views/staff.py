"""Operator entry points for staff: users (role, entitlement, session limit), all sessions
(stop), GPUs (enable/disable with a reason). Every action goes through the audited services;
django-admin remains the full console."""
from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_GET, require_POST

from medforge.accounts import selectors as account_selectors
from medforge.accounts import services as account_services
from medforge.accounts.models import User
from medforge.api.problems import Problem
from sessions_app import selectors as session_selectors
from sessions_app import services as session_services
from sessions_app.models import GPU, Session, SessionStatus

from ..forms import AdminUserForm, GpuToggleForm
from ..pages import page, problem_text, staff_page


@staff_page
@require_GET
def staff_home(request):
    gpus = session_selectors.gpu_overview()
    return page(request, "web/staff/home.html", {
        "users": User.objects.count(),
        "active_sessions": session_selectors.active_session_count(),
        "gpus": gpus["total"],
        "gpus_disabled": gpus["disabled"],
    })


@staff_page
@require_GET
def staff_users(request):
    query = (request.GET.get("q") or "").strip()
    users = Paginator(account_selectors.users_for_admin(query=query or None).order_by("id"), 50
                      ).get_page(request.GET.get("page"))
    counts = account_selectors.active_session_counts([u.pk for u in users])
    rows = [{"user": u, "active": counts.get(u.pk, 0),
             "form": AdminUserForm(prefix=f"u{u.pk}", initial={
                 "is_staff": u.is_staff, "can_use_internal": u.can_use_internal,
                 "max_concurrent_sessions": u.max_concurrent_sessions})} for u in users]
    return page(request, "web/staff/users.html", {"rows": rows, "page_obj": users, "q": query})


@staff_page
@require_POST
def staff_user_update(request, user_id):
    target = get_object_or_404(User, pk=user_id)
    form = AdminUserForm(request.POST, prefix=f"u{target.pk}")
    if not form.is_valid():
        messages.error(request, "Session limit must be between 1 and 8.")
        return redirect("web:staff-users")
    if target.pk == request.user.pk and not form.cleaned_data["is_staff"]:
        messages.error(request, "You cannot remove your own administrator role here.")
        return redirect("web:staff-users")
    account_services.admin_user_update(actor=request.user, user=target, data=form.cleaned_data,
                                       request=request)
    messages.success(request, f"Saved @{target.handle}.")
    return redirect("web:staff-users")


@staff_page
@require_GET
def staff_sessions(request):
    status = request.GET.get("status") or ""
    exposure = request.GET.get("exposure") or ""
    qs = session_selectors.sessions_for_admin(
        status=status if status in SessionStatus.values else None,
        exposure=exposure if exposure in ("external", "internal") else None,
    ).order_by("-created_at")
    return page(request, "web/staff/sessions.html", {
        "sessions": Paginator(qs, 50).get_page(request.GET.get("page")),
        "statuses": SessionStatus.values, "status": status, "exposure": exposure,
    })


@staff_page
@require_POST
def staff_session_stop(request, session_id):
    session = get_object_or_404(Session, pk=session_id)
    try:
        _, outcome = session_services.session_request_stop(session=session, by=request.user)
    except Problem as problem:
        messages.error(request, problem_text(problem))
    else:
        messages.info(request, f"s-{session.slug}: {outcome}.")
    return redirect("web:staff-sessions")


@staff_page
@require_GET
def staff_gpus(request):
    return page(request, "web/staff/gpus.html", {"overview": session_selectors.gpu_overview()})


@staff_page
@require_POST
def staff_gpu_toggle(request, gpu_id):
    gpu = get_object_or_404(GPU, index=gpu_id)
    form = GpuToggleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose enable or disable.")
        return redirect("web:staff-gpus")
    enabled = form.cleaned_data["enabled"]
    session_services.gpu_set_enabled(gpu=gpu, enabled=enabled, by=request.user,
                                     reason=form.cleaned_data["reason"])
    messages.success(request, f"GPU {gpu.index} is {'enabled' if enabled else 'disabled'}"
                              + ("" if enabled else "; it gets no new sessions (running ones "
                                                    "continue)") + ".")
    return redirect("web:staff-gpus")
