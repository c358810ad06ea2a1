"""Reads for accounts."""
from __future__ import annotations

from django.db.models import QuerySet

from . import hooks
from .models import ApiToken, User


def user_tokens(*, user: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user)


def active_session_counts(user_ids: list[int]) -> dict[int, int]:
    """Active sessions per user (across both exposures), from the counter the sessions app
    registers in accounts.hooks (accounts sits below sessions and never imports it)."""
    return hooks.active_session_counts(user_ids)


def users_for_admin(*, query: str | None = None, is_staff: bool | None = None) -> QuerySet[User]:
    qs = User.objects.all()
    if query:
        qs = qs.filter(email__icontains=query) | qs.filter(handle__icontains=query)
    if is_staff is not None:
        qs = qs.filter(is_staff=is_staff)
    return qs
