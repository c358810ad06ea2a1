"""Heartbeats of periodic jobs (reconcile), read by /healthz."""
from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from .models import Heartbeat

RECONCILE = "reconcile"


def beat(name: str, **detail) -> None:
    Heartbeat.objects.update_or_create(name=name, defaults={"at": timezone.now(), "detail": detail})


def last_beat(name: str) -> datetime | None:
    row = Heartbeat.objects.filter(name=name).only("at").first()
    return row.at if row else None


def age_seconds(name: str) -> float | None:
    at = last_beat(name)
    return None if at is None else (timezone.now() - at).total_seconds()
