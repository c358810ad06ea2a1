"""django-admin for competitions: datasets, competitions, submissions (with a rescore action),
append-only score runs and the maintained leaderboard (read-only, with a rebuild action)."""
from __future__ import annotations

from django.contrib import admin, messages

from . import services
from .models import Competition, Dataset, LeaderboardEntry, Score, Submission


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("slug", "title", "exposure", "created_at")
    list_filter = ("exposure",)
    search_fields = ("slug", "title")


@admin.action(description="Rebuild the leaderboards from the official scores")
def rebuild_leaderboards(modeladmin, request, queryset):
    for competition in queryset:
        rows = services.leaderboard_rebuild(competition=competition)
        modeladmin.message_user(request, f"{competition.slug}: {rows} leaderboard rows rebuilt.")


@admin.register(Competition)
class CompetitionAdmin(admin.ModelAdmin):
    list_display = ("slug", "title", "exposure", "metric", "higher_is_better", "daily_cap", "is_active", "reveal_at")
    list_filter = ("exposure", "metric", "is_active")
    search_fields = ("slug", "title")
    actions = [rebuild_leaderboards]

    def save_model(self, request, obj, form, change):
        direction_changed = change and "higher_is_better" in form.changed_data
        super().save_model(request, obj, form, change)
        if direction_changed:
            services.leaderboard_rebuild(competition=obj)
            messages.info(request, "The ranking direction changed: leaderboards rebuilt.")


class ScoreInline(admin.TabularInline):
    model = Score
    fk_name = "submission"
    extra = 0
    can_delete = False
    fields = ("created_at", "primary_score", "private_score", "official_for", "metric_version",
              "split_version", "manifest_sha256", "duration_ms")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.action(description="Rescore the selected submissions")
def rescore(modeladmin, request, queryset):
    count = 0
    for sub in queryset.select_related("competition"):
        services.submission_rescore(submission=sub, by=request.user, request=request)
        count += 1
    modeladmin.message_user(request, f"{count} submission(s) queued for rescoring.")


@admin.register(Submission)
class SubmissionAdmin(admin.ModelAdmin):
    list_display = ("id", "competition", "user", "status", "rows", "created_at", "scored_at")
    list_filter = ("status", "competition")
    search_fields = ("user__email", "user__handle", "sha256")
    list_select_related = ("competition", "user")
    readonly_fields = ("competition", "user", "file_path", "sha256", "size_bytes", "rows", "status", "error",
                       "attempts", "interrupted_runs", "created_at", "scoring_started_at", "scored_at")
    inlines = [ScoreInline]
    actions = [rescore]

    def has_add_permission(self, request):
        return False


@admin.register(Score)
class ScoreAdmin(ReadOnlyAdmin):
    """Score runs are append-only: viewable, never edited here."""

    list_display = ("id", "submission", "primary_score", "private_score", "official_for", "metric_version",
                    "created_at")
    list_filter = ("metric_version",)
    list_select_related = ("submission",)

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(LeaderboardEntry)
class LeaderboardEntryAdmin(ReadOnlyAdmin):
    list_display = ("competition", "board", "user", "best_score", "submission_count", "best_at")
    list_filter = ("competition", "board")
    list_select_related = ("competition", "user")
    ordering = ("competition", "board", "sort_key", "best_at")
