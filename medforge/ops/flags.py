"""Platform flags: maintenance mode (drain/undrain)."""
from __future__ import annotations

from .models import PlatformFlag

MAINTENANCE = "maintenance"


def is_enabled(name: str) -> bool:
    return PlatformFlag.objects.filter(name=name, enabled=True).exists()


def set_flag(name: str, enabled: bool, reason: str = "") -> PlatformFlag:
    flag, _ = PlatformFlag.objects.update_or_create(
        name=name, defaults={"enabled": enabled, "reason": reason})
    return flag


def maintenance_on() -> bool:
    return is_enabled(MAINTENANCE)
