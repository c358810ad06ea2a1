from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "medforge.web"
    label = "web"
    verbose_name = "Web UI"
