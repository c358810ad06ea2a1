"""The named cast (owner, stranger, admin, entitled) and API clients, for every test.

The database under test is MariaDB (scripts/test). Each API client sends the platform's Origin
by default, as a browser on the platform would.
"""
from __future__ import annotations

import pytest
from django.conf import settings
from django.core.cache import cache
from rest_framework.test import APIClient

from medforge.accounts.factories import DEFAULT_PASSWORD, AdminFactory, UserFactory

PLATFORM_ORIGIN = f"http://{settings.BASE_DOMAIN}"


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield


@pytest.fixture
def password() -> str:
    return DEFAULT_PASSWORD


@pytest.fixture
def owner(db):
    return UserFactory(handle="owner", email="owner@example.org")


@pytest.fixture
def stranger(db):
    return UserFactory(handle="stranger", email="stranger@example.org")


@pytest.fixture
def admin(db):
    return AdminFactory(handle="admin", email="admin@example.org")


@pytest.fixture
def entitled(db):
    return UserFactory(handle="entitled", email="entitled@example.org", can_use_internal=True)


def make_client(user=None, origin: str | None = PLATFORM_ORIGIN) -> APIClient:
    client = APIClient(HTTP_ORIGIN=origin) if origin else APIClient()
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def anon_client():
    return make_client()


@pytest.fixture
def client_for():
    """client_for(user) → an APIClient signed in with the session cookie."""
    return make_client
