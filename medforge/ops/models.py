"""Durable operational state: heartbeats of periodic jobs and platform flags (maintenance)."""
from __future__ import annotations

from django.db import models
from django.utils import timezone


class Heartbeat(models.Model):
    name = models.CharField(max_length=64, primary_key=True)
    at = models.DateTimeField(default=timezone.now)
    detail = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"{self.name} @ {self.at:%H:%M:%S}"


class PlatformFlag(models.Model):
    """Named switches set by operators (e.g. `maintenance` while draining for an upgrade)."""

    name = models.CharField(max_length=64, primary_key=True)
    enabled = models.BooleanField(default=False)
    reason = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name}={'on' if self.enabled else 'off'}"
