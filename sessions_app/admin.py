"""django-admin, the operator console for sessions: GPUs (enable/disable), packs, sessions
(stop), snapshots (restore into a new session) and the read-only event timeline."""
from __future__ import annotations

from django.contrib import admin, messages

from medforge.api.problems import Problem

from . import services
from .models import GPU, Pack, Session, SessionEvent, Snapshot


@admin.register(GPU)
class GPUAdmin(admin.ModelAdmin):
    list_display = ["index", "name", "uuid", "memory_mb", "enabled", "in_use", "note",
                    "last_seen_at"]
    list_filter = ["enabled"]
    search_fields = ["uuid", "name", "note"]
    readonly_fields = ["index", "uuid", "discovered_at", "last_seen_at", "enabled"]
    actions = ["disable_gpus", "enable_gpus"]

    @admin.display(boolean=True, description="in use")
    def in_use(self, obj: GPU) -> bool:
        return Session.objects.filter(active_gpu=obj).exists()

    @admin.action(description="Disable selected GPUs (no new sessions; running ones stay)")
    def disable_gpus(self, request, queryset):
        for gpu in queryset:
            services.gpu_set_enabled(gpu=gpu, enabled=False, by=request.user,
                                     reason=f"disabled in admin by {request.user.email}")
        self.message_user(request, f"Disabled {queryset.count()} GPU(s).")

    @admin.action(description="Enable selected GPUs")
    def enable_gpus(self, request, queryset):
        for gpu in queryset:
            services.gpu_set_enabled(gpu=gpu, enabled=True, by=request.user)
        self.message_user(request, f"Enabled {queryset.count()} GPU(s).")


@admin.register(Pack)
class PackAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "exposure", "is_default", "deprecated", "image", "created_at"]
    list_filter = ["exposure", "deprecated", "is_default"]
    search_fields = ["slug", "name", "image"]


class SessionEventInline(admin.TabularInline):
    model = SessionEvent
    extra = 0
    can_delete = False
    readonly_fields = ["at", "kind", "message", "data"]
    fields = readonly_fields

    def has_add_permission(self, request, obj=None):
        return False


class SnapshotInline(admin.TabularInline):
    model = Snapshot
    extra = 0
    can_delete = False
    readonly_fields = ["name", "kind", "full_name", "created_at", "size_bytes", "deleted_at"]
    fields = readonly_fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = ["slug", "owner", "exposure", "status", "gpu", "pack", "created_at",
                    "started_at", "stopped_at", "last_activity_at"]
    list_filter = ["status", "exposure", "pack", "gpu"]
    search_fields = ["slug", "id", "owner__email", "owner__handle", "container_id"]
    list_select_related = ["owner", "gpu", "pack"]
    date_hierarchy = "created_at"
    inlines = [SnapshotInline, SessionEventInline]
    actions = ["stop_sessions"]
    # The lifecycle owns every field: editing a row by hand would bypass the state machine.
    readonly_fields = [f.name for f in Session._meta.fields]

    def has_add_permission(self, request):
        return False

    # Read-only, not merely uneditable: "Save" would write back every column of the row as
    # it was read, over a lifecycle transition committed in between.
    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Stop selected sessions")
    def stop_sessions(self, request, queryset):
        outcomes: dict[str, int] = {}
        for session in queryset:
            _, message = services.session_request_stop(session=session, by=request.user)
            outcomes[message] = outcomes.get(message, 0) + 1
        summary = ", ".join(f"{n} {what}" for what, n in sorted(outcomes.items()))
        self.message_user(request, f"Stop requested: {summary}.")


@admin.register(Snapshot)
class SnapshotAdmin(admin.ModelAdmin):
    list_display = ["full_name", "owner", "kind", "created_at", "size_bytes", "deleted_at"]
    list_filter = ["kind"]
    search_fields = ["full_name", "owner__email", "session__slug"]
    list_select_related = ["owner", "session"]
    readonly_fields = [f.name for f in Snapshot._meta.fields]
    actions = ["restore_snapshots"]

    def has_add_permission(self, request):
        return False

    # Deleting the row would leave the workspace backend's snapshot unrecorded: invisible to
    # its owner and never pruned. Retention (`manage.py prune_snapshots`) removes both.
    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Restore into a new session (for the snapshot's owner)")
    def restore_snapshots(self, request, queryset):
        for snapshot in queryset.select_related("session", "owner"):
            try:
                session = services.session_restore(snapshot=snapshot, by=request.user)
            except Problem as problem:
                self.message_user(request, f"{snapshot.name}: {problem.detail}", messages.ERROR)
                continue
            self.message_user(request, f"{snapshot.name}: restoring into session s-{session.slug}.")


@admin.register(SessionEvent)
class SessionEventAdmin(admin.ModelAdmin):
    list_display = ["at", "session", "kind", "message"]
    list_filter = ["kind"]
    search_fields = ["session__slug", "message"]
    list_select_related = ["session"]
    readonly_fields = ["session", "at", "kind", "message", "data"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
