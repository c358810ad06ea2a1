"""Forward auth for session hosts: host parsing, the decision, and its cache (the hot path)."""
from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "routing"
    verbose_name = "Routing"

    def ready(self) -> None:
        # The other apps announce changes through hooks, so they never import routing.
        from medforge.accounts import hooks as account_hooks
        from sessions_app import hooks as session_hooks

        from . import cache

        session_hooks.on_session_changed(cache.forget_session)
        account_hooks.on_user_changed(cache.forget_user)
        account_hooks.on_token_revoked(cache.forget_token)
        account_hooks.on_session_key_ended(cache.forget_session_key)
