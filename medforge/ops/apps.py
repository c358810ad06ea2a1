"""Operational primitives every floor may use: maintenance flags, heartbeats, metric objects,
request metrics and task log context. The pages that read them live in status/."""
from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "medforge.ops"
    label = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        # Celery tasks (worker and eager) get correlation ids in their log lines.
        from .logcontext import connect

        connect()
