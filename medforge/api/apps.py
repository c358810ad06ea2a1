from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "medforge.api"
    label = "api"
