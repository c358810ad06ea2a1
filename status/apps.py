"""The status face: /healthz, /api/ready, /api/v2/status, /metrics and `manage.py smoke`."""
from django.apps import AppConfig


class StatusConfig(AppConfig):
    name = "status"
    label = "status"
    verbose_name = "Status"
