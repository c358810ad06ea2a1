"""Reads for accounts."""
from __future__ import annotations

from django.db.models import QuerySet

from .models import ApiToken, User


def user_tokens(*, user: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user)


def active_session_counts(user_ids: list[int]) -> dict[int, int]:
    """Active sessions per user (across both exposures); zero where the sessions app has none."""
    try:
        from sessions_app.selectors import active_session_counts as counts
    except ImportError:  # sessions app not installed yet
        return {uid: 0 for uid in user_ids}
    return counts(user_ids)


def users_for_admin(*, query: str | None = None, is_staff: bool | None = None) -> QuerySet[User]:
    qs = User.objects.all()
    if query:
        qs = qs.filter(email__icontains=query) | qs.filter(handle__icontains=query)
    if is_staff is not None:
        qs = qs.filter(is_staff=is_staff)
    return qs
