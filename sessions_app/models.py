"""GPUs, packs (IDE images), sessions with their lifecycle timeline, and workspace snapshots.

The one-active-session-per-GPU rule lives in the database: `Session.active_gpu` is a nullable
unique column set while the session is active and cleared when it ends, and a check
constraint ties it to the status, so no code path can double-book a GPU.
"""
from __future__ import annotations

import re
import secrets
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from medforge.core.exposure import Exposure  # noqa: F401  (re-exported: the models' choices)
from medforge.core.hosts import ide_url, session_host

SLUG_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"  # lowercase RFC 4648 base32
SLUG_RE = re.compile(r"^[a-z2-7]{8}$")


def new_slug() -> str:
    return "".join(secrets.choice(SLUG_ALPHABET) for _ in range(8))


class SessionStatus(models.TextChoices):
    STARTING = "starting", "Starting"
    RUNNING = "running", "Running"
    STOPPING = "stopping", "Stopping"
    STOPPED = "stopped", "Stopped"
    ERROR = "error", "Error"


ACTIVE_STATUSES = (SessionStatus.STARTING, SessionStatus.RUNNING, SessionStatus.STOPPING)
TERMINAL_STATUSES = (SessionStatus.STOPPED, SessionStatus.ERROR)


class GPU(models.Model):
    index = models.PositiveSmallIntegerField(unique=True, help_text="Host device index.")
    uuid = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=128, blank=True)
    memory_mb = models.PositiveIntegerField(default=0)
    enabled = models.BooleanField(default=True, help_text="Disabled GPUs are never allocated.")
    note = models.CharField(max_length=200, blank=True, help_text="Why it is disabled, etc.")
    discovered_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["index"]
        verbose_name = "GPU"

    def __str__(self) -> str:
        return f"GPU {self.index} ({self.name or self.uuid})"


def validate_pinned_image(value: str) -> None:
    """Packs are pinned by content: `repo@sha256:<64 hex>` or a local image id `sha256:<hex>`."""
    if not re.fullmatch(r"(?:[\w./:-]+@)?sha256:[0-9a-f]{64}", value):
        raise ValidationError("Image must be digest-pinned: name@sha256:<64 hex> or sha256:<64 hex>.")


class PackExposure(models.TextChoices):
    EXTERNAL = "external", "External"
    INTERNAL = "internal", "Internal"
    BOTH = "both", "Both"


class Pack(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=128)
    description = models.TextField(blank=True)
    image = models.CharField(max_length=300, validators=[validate_pinned_image])
    exposure = models.CharField(max_length=16, choices=PackExposure.choices,
                                default=PackExposure.BOTH)
    deprecated = models.BooleanField(default=False)
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name

    def offered_on(self, exposure: str) -> bool:
        return self.exposure in (PackExposure.BOTH, exposure)


class Session(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.CharField(max_length=8, unique=True, default=new_slug)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                              related_name="gpu_sessions")
    exposure = models.CharField(max_length=16, choices=Exposure.choices)
    pack = models.ForeignKey(Pack, on_delete=models.PROTECT, related_name="sessions")
    gpu = models.ForeignKey(GPU, on_delete=models.PROTECT, related_name="sessions")
    # Set while active, NULL once terminal: the unique index forbids two active sessions per GPU.
    active_gpu = models.OneToOneField(GPU, null=True, blank=True, on_delete=models.PROTECT,
                                      related_name="active_session")
    status = models.CharField(max_length=16, choices=SessionStatus.choices,
                              default=SessionStatus.STARTING, db_index=True)
    container_id = models.CharField(max_length=80, blank=True)
    upstream = models.CharField(max_length=128, blank=True, help_text="host:port of the IDE.")
    workspace_id = models.CharField(max_length=255, blank=True)
    workspace_path = models.CharField(max_length=500, blank=True)
    restored_from = models.ForeignKey("Snapshot", null=True, blank=True,
                                      on_delete=models.SET_NULL, related_name="restored_into")
    error_message = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    stop_requested_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_activity_at = models.DateTimeField(null=True, blank=True,
                                            help_text="Last proxied IDE request (idle culling).")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                name="session_active_gpu_iff_active",
                condition=(Q(status__in=list(ACTIVE_STATUSES)) & Q(active_gpu__isnull=False))
                | (Q(status__in=list(TERMINAL_STATUSES)) & Q(active_gpu__isnull=True)),
            ),
        ]
        indexes = [
            models.Index(fields=["owner", "status"]),
            models.Index(fields=["owner", "exposure", "created_at"]),
            models.Index(fields=["status", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"s-{self.slug} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def container_name(self) -> str:
        return f"mf-session-{self.slug}"

    @property
    def host(self) -> str:
        return session_host(self.slug, self.exposure)

    @property
    def ide_url(self) -> str | None:
        """The "Open IDE" link while the session runs, else None."""
        if self.status != SessionStatus.RUNNING:
            return None
        return ide_url(slug=self.slug, exposure=self.exposure)


class SessionEvent(models.Model):
    """One step of a session's lifecycle, shown to the user as start progress and history."""

    id = models.BigAutoField(primary_key=True)
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=40)
    message = models.CharField(max_length=500, blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["session", "id"])]

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


class SnapshotKind(models.TextChoices):
    STOP = "stop", "On stop"
    DEATH = "death", "Container died"
    MANUAL = "manual", "Manual"


class Snapshot(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey(Session, on_delete=models.PROTECT, related_name="snapshots")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                              related_name="snapshots")
    name = models.CharField(max_length=64, help_text="e.g. stop-1767225600000")
    full_name = models.CharField(max_length=400, unique=True,
                                 help_text="<workspace>@<name> in the workspace backend.")
    kind = models.CharField(max_length=16, choices=SnapshotKind.choices)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True, help_text="Pruned by retention.")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["session", "name"], name="snapshot_unique_per_session"),
        ]
        indexes = [models.Index(fields=["owner", "created_at"])]

    def __str__(self) -> str:
        return self.full_name
