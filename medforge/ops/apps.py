from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "medforge.ops"
    label = "ops"
    verbose_name = "Operations"
