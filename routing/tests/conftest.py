"""Fixtures for the forward-auth tests: session rows (no container), hosts, and a caller that
asks the endpoint exactly as Caddy does (original Host, the browser's cookie or a Bearer)."""
from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client

from sessions_app.factories import GPUFactory, PackFactory, SessionFactory

PATH = "/api/v2/auth/session-proxy"
UPSTREAM = "127.0.0.1:18080"


def host_for(slug: str, exposure: str = "external") -> str:
    return f"s-{slug}.{exposure}.{settings.BASE_DOMAIN}"


def session_cookie(user) -> str:
    """A real signed-in Django session for `user` (what a browser carries after login)."""
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


class Caller:
    """Asks the forward-auth endpoint through the full Django stack (middleware included)."""

    def __init__(self) -> None:
        self.client = Client()

    def ask(self, host: str, *, cookie: str | None = None, token: str | None = None,
            **headers):
        extra = {"HTTP_HOST": host, **headers}
        if cookie is not None:
            extra["HTTP_COOKIE"] = f"{settings.SESSION_COOKIE_NAME}={cookie}"
        if token is not None:
            extra["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        return self.client.get(PATH, **extra)


@pytest.fixture
def caller() -> Caller:
    return Caller()


@pytest.fixture
def make_session(db):
    """make_session(owner, exposure="external", status="running", upstream=UPSTREAM)"""
    counter = iter(range(100))

    def make(owner, *, exposure: str = "external", status: str = "running",
             upstream: str = UPSTREAM):
        gpu = GPUFactory(index=next(counter))
        return SessionFactory(owner=owner, exposure=exposure, status=status, gpu=gpu,
                              pack=PackFactory(slug="routing-pack"),
                              upstream=upstream if status == "running" else "")

    return make


@pytest.fixture(autouse=True)
def _activity_batch(settings):
    """Each test starts with an empty activity batch (flushed only when the test says so) and
    an empty forward-auth L1."""
    from routing import activity, cache

    settings.FORWARD_AUTH_ACTIVITY_FLUSH_SECONDS = 3600
    activity._pending.clear()
    # The shared cache was flushed for this test; this process's copy goes with it.
    cache.drop_local()
    yield
    activity._pending.clear()
