"""The operations app: health, status, metrics, maintenance flags, task log context."""
from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "medforge.ops"
    label = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        # Celery tasks (worker and eager) get correlation ids in their log lines.
        from .logcontext import connect

        connect()
