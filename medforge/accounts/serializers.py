"""Input and output shapes for the accounts API."""
from __future__ import annotations

from rest_framework import serializers

from medforge.api.serializers import StrictInputSerializer

from .models import HANDLE_RE, MAX_SESSIONS_CEILING, ApiToken, AuditLog, User


class UserSerializer(serializers.ModelSerializer):
    is_admin = serializers.BooleanField(source="is_staff", read_only=True)

    class Meta:
        model = User
        fields = ["id", "email", "handle", "display_name", "is_admin", "can_use_internal",
                  "max_concurrent_sessions", "date_joined"]
        read_only_fields = fields


class AdminUserSerializer(UserSerializer):
    active_sessions = serializers.SerializerMethodField()

    class Meta(UserSerializer.Meta):
        fields = UserSerializer.Meta.fields + ["is_active", "last_login", "active_sessions"]
        read_only_fields = fields

    def get_active_sessions(self, obj) -> int:
        return self.context.get("active_counts", {}).get(obj.pk, 0)


class SignupInput(StrictInputSerializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=256, trim_whitespace=False)
    handle = serializers.RegexField(HANDLE_RE, max_length=30)
    display_name = serializers.CharField(max_length=80, required=False, allow_blank=True,
                                         default="")


class LoginInput(StrictInputSerializer):
    email = serializers.CharField(max_length=254)
    password = serializers.CharField(max_length=256, trim_whitespace=False)


class MeUpdateInput(StrictInputSerializer):
    email = serializers.EmailField(max_length=254, required=False)
    handle = serializers.RegexField(HANDLE_RE, max_length=30, required=False)
    display_name = serializers.CharField(max_length=80, required=False, allow_blank=True)
    password = serializers.CharField(max_length=256, required=False, trim_whitespace=False)
    current_password = serializers.CharField(max_length=256, required=False,
                                             trim_whitespace=False)

    def validate(self, attrs):
        if attrs.get("password") and not attrs.get("current_password"):
            raise serializers.ValidationError(
                {"current_password": ["Required to change the password."]})
        return attrs


class TokenSerializer(serializers.ModelSerializer):
    active = serializers.SerializerMethodField()

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "expires_at", "last_used_at",
                  "revoked_at", "active"]
        read_only_fields = fields

    def get_active(self, obj) -> bool:
        return obj.is_usable()


class TokenWithSecretSerializer(TokenSerializer):
    secret = serializers.SerializerMethodField(help_text="Shown only in this response.")

    class Meta(TokenSerializer.Meta):
        fields = TokenSerializer.Meta.fields + ["secret"]
        read_only_fields = fields

    def get_secret(self, obj) -> str:
        return self.context["secret"]


class TokenCreateInput(StrictInputSerializer):
    name = serializers.CharField(max_length=80)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class AdminUserUpdateInput(StrictInputSerializer):
    is_admin = serializers.BooleanField(required=False)
    can_use_internal = serializers.BooleanField(required=False)
    max_concurrent_sessions = serializers.IntegerField(required=False, min_value=1,
                                                       max_value=MAX_SESSIONS_CEILING)
    is_active = serializers.BooleanField(required=False)


class AuditLogSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.handle", default=None, read_only=True)

    class Meta:
        model = AuditLog
        fields = ["id", "created_at", "actor", "action", "target_type", "target_id", "data",
                  "ip", "request_id"]
        read_only_fields = fields
