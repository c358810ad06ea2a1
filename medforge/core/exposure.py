"""The two surfaces (exposures) and the one entitlement rule for INTERNAL.

Every check of "may this person use the INTERNAL surface" goes through `may_use` (or, on the
forward-auth hot path where only cached facts are at hand, `entitled`)."""
from __future__ import annotations

from django.db import models

EXTERNAL = "external"
INTERNAL = "internal"
EXPOSURES = (EXTERNAL, INTERNAL)


class Exposure(models.TextChoices):
    EXTERNAL = EXTERNAL, "External"
    INTERNAL = INTERNAL, "Internal"


def entitled(*, exposure: str, is_staff: bool, can_use_internal: bool) -> bool:
    """EXTERNAL is open to every signed-in user; INTERNAL to admins and entitled users."""
    return exposure != INTERNAL or bool(is_staff) or bool(can_use_internal)


def may_use(user, exposure: str) -> bool:
    """Whether `user` (signed in) may use the surface `exposure`."""
    return entitled(exposure=exposure, is_staff=getattr(user, "is_staff", False),
                    can_use_internal=getattr(user, "can_use_internal", False))
