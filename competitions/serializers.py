"""Output serializers of the competitions API (inputs are multipart fields and query params)."""
from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


class DatasetSerializer(serializers.Serializer):
    slug = serializers.CharField()
    title = serializers.CharField()
    exposure = serializers.CharField()
    description = serializers.CharField()
    description_html = serializers.CharField()
    source_url = serializers.CharField()
    license = serializers.CharField()
    competitions = serializers.SerializerMethodField()

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_competitions(self, obj) -> list[str]:
        # Only those of the dataset's own surface: an INTERNAL competition is never named on EXTERNAL.
        return sorted(c.slug for c in obj.competitions.all() if c.is_active and c.exposure == obj.exposure)


class CompetitionSerializer(serializers.Serializer):
    slug = serializers.CharField()
    title = serializers.CharField()
    exposure = serializers.CharField()
    dataset = serializers.CharField(source="dataset.slug")
    metric = serializers.CharField()
    higher_is_better = serializers.BooleanField()
    daily_cap = serializers.IntegerField()
    reveal_at = serializers.DateTimeField(allow_null=True)
    description = serializers.CharField()
    description_html = serializers.CharField()
    created_at = serializers.DateTimeField()


class SubmissionFormatSerializer(serializers.Serializer):
    header = serializers.CharField()
    description = serializers.CharField()


class CompetitionDetailSerializer(CompetitionSerializer):
    rules = serializers.CharField()
    rules_html = serializers.CharField()
    submission_formats = SubmissionFormatSerializer(many=True)
    has_private_board = serializers.BooleanField()
    private_board_visible = serializers.BooleanField()
    remaining_today = serializers.IntegerField()
    max_upload_bytes = serializers.IntegerField()


class LeaderboardRowSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    handle = serializers.CharField()
    display_name = serializers.CharField()
    score = serializers.FloatField()
    submission_count = serializers.IntegerField()
    best_at = serializers.DateTimeField()
    submission_id = serializers.IntegerField()


class SubmissionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    competition = serializers.CharField(source="competition.slug")
    status = serializers.CharField()
    description = serializers.CharField()
    rows = serializers.IntegerField()
    size_bytes = serializers.IntegerField()
    sha256 = serializers.CharField()
    error = serializers.CharField()
    created_at = serializers.DateTimeField()
    scored_at = serializers.DateTimeField(allow_null=True)
    score = serializers.SerializerMethodField()
    private_score = serializers.SerializerMethodField()

    def _official(self, obj):
        try:
            return obj.official_score
        except ObjectDoesNotExist:  # not scored yet
            return None

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_score(self, obj) -> float | None:
        official = self._official(obj)
        return None if official is None else official.primary_score

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_private_score(self, obj) -> float | None:
        """Only once the private board is visible to the caller (else null)."""
        official = self._official(obj)
        request = self.context.get("request")
        if official is None or request is None or not obj.competition.private_board_visible_to(request.user):
            return None
        return official.private_score


class SubmissionCreatedSerializer(SubmissionSerializer):
    daily_cap = serializers.IntegerField()
    remaining_today = serializers.IntegerField()


class DatasetFileSerializer(serializers.Serializer):
    name = serializers.CharField()
    area = serializers.ChoiceField(choices=["public", "training"])
    size = serializers.IntegerField()
    modified = serializers.DateTimeField()
    url = serializers.CharField()


class HistoryPointSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    score = serializers.FloatField()
    handle = serializers.CharField()
