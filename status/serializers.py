"""Output shapes of GET /api/v2/status (public figures; users/submissions for staff only)."""
from __future__ import annotations

from rest_framework import serializers


class BuildSerializer(serializers.Serializer):
    version = serializers.CharField()
    commit = serializers.CharField(allow_null=True)


class GpuDeviceSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    name = serializers.CharField(allow_blank=True)
    memory_mb = serializers.IntegerField()
    enabled = serializers.BooleanField()
    state = serializers.ChoiceField(choices=["in_use", "free", "disabled"])
    utilization_pct = serializers.FloatField(allow_null=True)
    memory_used_mb = serializers.IntegerField(allow_null=True)
    temperature_c = serializers.FloatField(allow_null=True)


class GpuSummarySerializer(serializers.Serializer):
    total = serializers.IntegerField()
    in_use = serializers.IntegerField()
    free = serializers.IntegerField()
    disabled = serializers.IntegerField()
    telemetry_available = serializers.BooleanField(
        help_text="True when NVML/nvidia-smi figures are shown per device.")
    telemetry_error = serializers.CharField(allow_null=True)
    devices = GpuDeviceSerializer(many=True)


class SessionCountsSerializer(serializers.Serializer):
    starting = serializers.IntegerField()
    running = serializers.IntegerField()
    stopping = serializers.IntegerField()
    stopped = serializers.IntegerField()
    error = serializers.IntegerField()


class QueueDepthsSerializer(serializers.Serializer):
    default = serializers.IntegerField(allow_null=True, help_text="null when the broker is down")
    scoring = serializers.IntegerField(allow_null=True)


class StorageSerializer(serializers.Serializer):
    available = serializers.BooleanField(help_text="False when the store could not be read.")
    backend = serializers.CharField(required=False)
    healthy = serializers.BooleanField()
    health = serializers.CharField(help_text="ZFS pool health (ONLINE, DEGRADED, …).")
    total_bytes = serializers.IntegerField(required=False)
    used_bytes = serializers.IntegerField(required=False)
    available_bytes = serializers.IntegerField(required=False)
    used_pct = serializers.FloatField(required=False, allow_null=True)
    pool_used_pct = serializers.FloatField(required=False, allow_null=True)
    error = serializers.CharField(required=False)


class ReconcileSerializer(serializers.Serializer):
    enabled = serializers.BooleanField()
    heartbeat_age_seconds = serializers.FloatField(allow_null=True)


class UserCountsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    active = serializers.IntegerField()
    admins = serializers.IntegerField()


class StatusSerializer(serializers.Serializer):
    build = BuildSerializer()
    maintenance = serializers.BooleanField(help_text="True while new sessions are paused.")
    gpus = GpuSummarySerializer()
    sessions = SessionCountsSerializer()
    queues = QueueDepthsSerializer()
    storage = StorageSerializer()
    reconcile = ReconcileSerializer()
    generated_at = serializers.DateTimeField()
    users = UserCountsSerializer(required=False, help_text="Staff only.")
    submissions = serializers.DictField(
        child=serializers.IntegerField(), required=False, allow_null=True,
        help_text="Staff only: submissions per status (null before competitions exist).")

    def to_representation(self, instance):
        data = super().to_representation(instance)
        # Staff-only keys are absent (not null) for everyone else.
        for key in ("users", "submissions"):
            if key not in instance:
                data.pop(key, None)
        return data
