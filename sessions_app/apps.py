from django.apps import AppConfig


class SessionsAppConfig(AppConfig):
    name = "sessions_app"
    verbose_name = "Sessions"

    def ready(self) -> None:
        # The admin users list (accounts, one floor down) shows each user's active sessions
        # through the one count this app owns.
        from medforge.accounts import hooks

        from .selectors import active_session_counts

        hooks.provide_active_session_counts(active_session_counts)
