"""django-admin for users, API tokens and the (read-only) audit log."""
from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from . import services
from .models import ApiToken, AuditLog, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "handle", "is_staff", "can_use_internal", "max_concurrent_sessions",
                    "is_active", "date_joined"]
    list_filter = ["is_staff", "can_use_internal", "is_active"]
    search_fields = ["email", "handle", "display_name"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("handle", "display_name")}),
        ("Entitlements", {"fields": ("is_staff", "is_superuser", "can_use_internal",
                                     "max_concurrent_sessions", "is_active")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",),
                             "fields": ("email", "handle", "password1", "password2")}),)
    readonly_fields = ["last_login", "date_joined"]

    def save_model(self, request, obj, form, change):
        if not change:
            return super().save_model(request, obj, form, change)
        # Role, entitlement, limit and activation go through the service, so they are audited
        # and forward auth forgets the old decision. Only the other fields are saved here: a
        # full save would write the new role first and leave the service nothing to change.
        watched = {"is_staff", "can_use_internal", "max_concurrent_sessions", "is_active"}
        data = {f: form.cleaned_data[f] for f in form.changed_data if f in watched}
        others = [f for f in form.changed_data if f not in watched]
        if others:
            obj.save(update_fields=others)
        if data:
            services.admin_user_update(actor=request.user, user=obj, data=data, request=request)

    def user_change_password(self, request, id, form_url=""):
        user = self.get_object(request, unquote(id)) if request.method == "POST" else None
        response = super().user_change_password(request, id, form_url)
        if user is not None and User.objects.filter(pk=user.pk).exclude(
                password=user.password).exists():
            services.admin_password_set(actor=request.user, user=user, request=request)
        return response

    def delete_model(self, request, obj):
        services.user_delete(actor=request.user, user=obj, request=request)

    def delete_queryset(self, request, queryset):
        for user in queryset:
            self.delete_model(request, user)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "created_at", "expires_at", "last_used_at",
                    "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "user__email", "prefix"]
    readonly_fields = ["id", "user", "name", "prefix", "token_hash", "created_at", "expires_at",
                       "last_used_at", "revoked_at"]
    actions = ["revoke"]

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset):
        for token in queryset:
            services.token_revoke(token=token, by=request.user, request=request)

    def has_add_permission(self, request):
        return False

    def delete_model(self, request, obj):
        services.token_delete(token=obj, by=request.user, request=request)

    def delete_queryset(self, request, queryset):
        for token in queryset:
            self.delete_model(request, token)


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor", "action", "target_type", "target_id", "ip"]
    list_filter = ["action"]
    search_fields = ["action", "target_id", "actor__email", "request_id"]
    readonly_fields = [f.name for f in AuditLog._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
