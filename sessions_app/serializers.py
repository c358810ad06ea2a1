"""API shapes for sessions, events, snapshots and packs. Output serializers never carry the
raw upstream address or container id except the admin variant."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from medforge.api.serializers import StrictInputSerializer

from .models import Pack, Session, SessionEvent, Snapshot


class PackRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Pack
        fields = ["id", "slug", "name"]


class PackSerializer(serializers.ModelSerializer):
    class Meta:
        model = Pack
        fields = ["id", "slug", "name", "description", "exposure", "deprecated", "is_default"]


class GpuRefSerializer(serializers.Serializer):
    index = serializers.IntegerField()


class SnapshotSerializer(serializers.ModelSerializer):
    session_id = serializers.UUIDField(read_only=True)

    class Meta:
        model = Snapshot
        fields = ["id", "name", "kind", "created_at", "size_bytes", "session_id"]


class SessionSerializer(serializers.ModelSerializer):
    pack = PackRefSerializer(read_only=True)
    gpu = GpuRefSerializer(read_only=True)
    host = serializers.CharField(read_only=True)
    ide_url = serializers.SerializerMethodField()
    restored_from = serializers.UUIDField(source="restored_from_id", read_only=True,
                                          allow_null=True)
    snapshots = SnapshotSerializer(many=True, read_only=True)

    class Meta:
        model = Session
        fields = ["id", "slug", "exposure", "pack", "gpu", "status", "host", "ide_url",
                  "created_at", "started_at", "stop_requested_at", "stopped_at",
                  "error_message", "restored_from", "snapshots"]

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_ide_url(self, obj: Session) -> str | None:
        return obj.ide_url


class AdminSessionSerializer(SessionSerializer):
    owner = serializers.SerializerMethodField()

    class Meta(SessionSerializer.Meta):
        fields = SessionSerializer.Meta.fields + ["owner", "container_id", "upstream",
                                                  "workspace_id", "last_activity_at"]

    @extend_schema_field({"type": "object", "properties": {
        "id": {"type": "integer"}, "email": {"type": "string"}, "handle": {"type": "string"}}})
    def get_owner(self, obj: Session) -> dict:
        return {"id": obj.owner_id, "email": obj.owner.email, "handle": obj.owner.handle}


class SessionEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = SessionEvent
        fields = ["id", "at", "kind", "message", "data"]


class CurrentSessionSerializer(serializers.Serializer):
    session = SessionSerializer(allow_null=True)


class StopResultSerializer(serializers.Serializer):
    session = SessionSerializer()
    message = serializers.CharField()


class SessionCreateInput(StrictInputSerializer):
    pack_id = serializers.CharField(required=False, allow_null=True, max_length=64,
                                    help_text="A pack's id or slug; the default pack if absent.")


class SnapshotRestoreInput(StrictInputSerializer):
    pass
