"""manage.py smoke URL against a real HTTP server (pytest-django's live_server, the same
Django app the deployment serves): passes on a healthy platform, exits non-zero with a clear
summary when anything fails."""
from __future__ import annotations

import socket
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from medforge.accounts.factories import DEFAULT_PASSWORD, UserFactory

ORIGIN = "http://medforge.localhost"  # live_server listens on localhost:<port>; the Origin
# names the platform host, as a browser on the platform would.


@pytest.fixture
def platform(transactional_db, live_server, settings):
    settings.RECONCILE_ENABLED = False
    call_command("seed", "--no-data", stdout=StringIO())
    user = UserFactory(email="smoke@example.org", handle="smoke")
    return live_server.url, user


def smoke(url, *args) -> tuple[str, str, CommandError | None]:
    out, err = StringIO(), StringIO()
    try:
        call_command("smoke", url, "--origin", ORIGIN, *args, stdout=out, stderr=err)
        return out.getvalue(), err.getvalue(), None
    except CommandError as exc:
        return out.getvalue(), err.getvalue(), exc


@pytest.mark.slow
@pytest.mark.docker  # /api/ready checks the Docker engine
def test_healthy_platform_passes(platform):
    url, user = platform
    out, err, failure = smoke(url, "--email", user.email, "--password", DEFAULT_PASSWORD,
                              "--metrics")
    assert failure is None, out + err
    for name in ("healthz", "ready", "status", "metrics", "login", "competitions"):
        assert f"PASS {name}" in out, out
    assert "titanic-survival" in out or "3 listed" in out
    assert "0 failed" in out


@pytest.mark.slow
def test_wrong_password_fails_with_a_summary(platform):
    url, user = platform
    out, err, failure = smoke(url, "--email", user.email, "--password", "not-the-password")
    assert failure is not None and "failed" in str(failure)
    assert "FAIL login" in out
    assert "FAILED login" in err and "401" in err
    assert "Traceback" not in out + err


def test_unreachable_deployment_fails_cleanly():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out, err, failure = smoke(f"http://127.0.0.1:{port}", "--email", "a@b.c", "--password", "x",
                              "--timeout", "2")
    assert failure is not None
    assert "FAIL healthz" in out and "ConnectionError" in out
    assert "passed" in str(failure) and "Traceback" not in out + err


def test_credentials_are_required():
    with pytest.raises(CommandError, match="--email and --password"):
        call_command("smoke", "http://127.0.0.1:9", stdout=StringIO())
