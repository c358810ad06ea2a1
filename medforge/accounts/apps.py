from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "medforge.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_out

        from . import schema  # noqa: F401  (registers the OpenAPI auth extensions)

        user_logged_out.connect(_session_ended, dispatch_uid="medforge.accounts.session_ended")


def _session_ended(sender, request, **kwargs) -> None:
    """Every logout (the API, the web UI, django-admin) ends the cookie for forward auth too.
    Django sends this just before it flushes the session, so the key is still known."""
    from . import hooks

    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if session_key:
        hooks.session_key_ended(session_key)
