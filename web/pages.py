"""Shared plumbing for the web views: rendering with the layout's context, the sign-in and
surface gates, and turning a service's Problem into messages a person can act on."""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import render

from medforge.api.problems import Problem
from medforge.core.exposure import may_use

from .surface import EXTERNAL, INTERNAL, surface_of, surface_url

# What a user should read for the errors that block their work, instead of an API title.
FRIENDLY = {
    "no_gpus_available": "All GPUs are busy right now, so no session was started. "
                         "Try again in a few minutes.",
    "maintenance": "The platform is in maintenance: new sessions are paused for now. "
                   "Sessions that already run keep working.",
    "internal_access_required": "The internal surface is only for entitled users.",
    "submission_cap_reached": "You have used all of today's submissions for this competition.",
}


def problem_text(problem: Problem) -> str:
    """The sentence shown for a Problem: a friendly one for well-known codes, with the
    service's own detail added when it says more (e.g. the session limit number)."""
    friendly = FRIENDLY.get(problem.code)
    if friendly and problem.detail and problem.detail != problem.title and problem.code not in (
            "no_gpus_available", "maintenance"):
        return f"{friendly} {problem.detail}"
    return friendly or problem.detail or problem.title


def page(request, template: str, context: dict[str, Any] | None = None, status: int = 200):
    """Render a page with what the layout needs: the surface and links to the other one."""
    surface = surface_of(request)
    match = getattr(request, "resolver_match", None)
    ctx = {
        "section": (match.url_name or "").split("-")[0] if match else "",
        "surface": surface,
        "external_url": surface_url(request, EXTERNAL),
        "internal_url": surface_url(request, INTERNAL),
    }
    ctx.update(context or {})
    return render(request, template, ctx, status=status)


def forbidden(request, title: str, detail: str):
    return page(request, "web/forbidden.html", {"title": title, "detail": detail}, status=403)


def member_page(view: Callable) -> Callable:
    """Signed-in users only; on the INTERNAL surface, entitled users (or staff) only.

    Sets `request.exposure` so views never decide it themselves.
    """
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        request.exposure = surface_of(request)
        if not may_use(request.user, request.exposure):
            return forbidden(
                request, "Internal access required",
                "The internal surface is open only to users entitled to it. "
                "Ask an administrator if you need access, or use the external surface.")
        return view(request, *args, **kwargs)
    return wrapper


def staff_page(view: Callable) -> Callable:
    """Administrators only (a clear 403 page for everybody else who is signed in)."""
    @wraps(view)
    @member_page
    def wrapper(request, *args, **kwargs):
        if not request.user.is_staff:
            return forbidden(request, "Administrators only",
                             "This page is part of the operator console.")
        return view(request, *args, **kwargs)
    return wrapper


def apply_problem(request, problem: Problem, form=None, field_map: dict[str, str] | None = None):
    """Attach a Problem to a form (field errors where the field exists, otherwise a form-wide
    error) or, without a form, to the page's messages."""
    field_map = field_map or {}
    if form is None:
        messages.error(request, problem_text(problem))
        return
    placed = False
    for err in problem.errors or []:
        name = field_map.get(err.get("field") or "", err.get("field"))
        if name in form.fields:
            form.add_error(name, err.get("message") or problem.detail)
            placed = True
    if not placed:
        name = field_map.get(_CODE_FIELDS.get(problem.code, ""), _CODE_FIELDS.get(problem.code))
        if name in form.fields:
            form.add_error(name, problem_text(problem))
        else:
            form.add_error(None, problem_text(problem))


# Problems without a field list that still belong to one field of the form.
_CODE_FIELDS = {"email_taken": "email", "handle_taken": "handle"}
