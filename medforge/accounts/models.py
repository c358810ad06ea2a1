"""User (email login, leaderboard handle, entitlements), API tokens (hashed) and audit log."""
from __future__ import annotations

import uuid

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from medforge.core.exposure import INTERNAL, may_use

HANDLE_RE = r"^[a-z0-9](?:[a-z0-9_-]{1,28}[a-z0-9])$"
MAX_SESSIONS_CEILING = 8


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create(self, email, password, **extra):
        if not email:
            raise ValueError("email is required")
        email = self.normalize_email(email).lower()
        extra.setdefault("handle", _default_handle(email))
        user = self.model(email=email, **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email, password=None, **extra):
        extra.update(is_staff=True, is_superuser=True, can_use_internal=True)
        return self._create(email, password, **extra)


def _default_handle(email: str) -> str:
    import re

    base = re.sub(r"[^a-z0-9_-]", "-", email.split("@")[0].lower()).strip("-_") or "user"
    base = (base + "xx")[:20] if len(base) < 3 else base[:20]
    return f"{base}-{uuid.uuid4().hex[:6]}"


class User(AbstractBaseUser, PermissionsMixin):
    email = models.EmailField(unique=True)
    handle = models.CharField(
        max_length=30,
        unique=True,
        validators=[RegexValidator(HANDLE_RE, "3-30 lowercase letters, digits, '-' or '_'.")],
        help_text="Public name on leaderboards.",
    )
    display_name = models.CharField(max_length=80, blank=True)
    is_staff = models.BooleanField(default=False, help_text="Administrator role.")
    is_active = models.BooleanField(default=True)
    can_use_internal = models.BooleanField(default=False, help_text="INTERNAL entitlement.")
    max_concurrent_sessions = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(MAX_SESSIONS_CEILING)]
    )
    date_joined = models.DateTimeField(default=timezone.now)
    # Bumped whenever something that forward-auth caches about this user changes
    # (role, entitlement, password, logout-everywhere): cached decisions keyed on it go stale.
    auth_version = models.PositiveIntegerField(default=0)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(max_concurrent_sessions__gte=1)
                & models.Q(max_concurrent_sessions__lte=MAX_SESSIONS_CEILING),
                name="user_max_sessions_1_8",
            ),
        ]
        indexes = [models.Index(Lower("email"), name="user_email_lower")]

    def __str__(self) -> str:
        return self.email

    @property
    def is_admin(self) -> bool:
        return self.is_staff

    @property
    def may_use_internal(self) -> bool:
        return may_use(self, INTERNAL)


class ApiToken(models.Model):
    """A personal API token. Only sha256(secret) is stored; the secret is shown once."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=80)
    prefix = models.CharField(max_length=16, help_text="First characters, to recognise it.")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "created_at"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def is_usable(self, now=None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class AuditLog(models.Model):
    """An append-only record of admin and security actions."""

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    data = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=128, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.action} {self.target_type}:{self.target_id}"
