"""login / logout / whoami and token handling against the fake API."""
from __future__ import annotations

import os
import stat
import tomllib

from cli_fakes import FakeApi, envelope, page, problem
from medforge_cli import errors

USER = {"id": 7, "email": "ada@example.org", "handle": "ada", "display_name": "Ada",
        "is_admin": False, "can_use_internal": False, "max_concurrent_sessions": 1,
        "date_joined": "2026-01-01T00:00:00Z"}


def stored(cli_env) -> dict:
    return tomllib.loads((cli_env / "config.toml").read_text())


def me_api(secret: str = "mf_good") -> FakeApi:
    def me(request):
        if request.headers.get("authorization") != f"Bearer {secret}":
            return problem(401, "invalid_token", "Invalid or expired token.")
        return envelope(USER)

    return FakeApi().add("GET", "/me", me)


def test_login_checks_the_token_and_stores_it_0600(cli, cli_env):
    api = me_api()
    result = cli("login", "--url", "https://medforge.test/", "--token-stdin",
                 stdin="mf_good\n", transport=api.transport)
    assert result.exit_code == 0, result
    assert "Logged in to https://medforge.test as ada (ada@example.org)" in result.stderr
    assert stored(cli_env)["profiles"]["default"] == {"url": "https://medforge.test", "token": "mf_good"}
    assert stat.S_IMODE(os.stat(cli_env / "config.toml").st_mode) == 0o600
    (call,) = api.requests
    assert str(call.url) == "https://medforge.test/api/v2/me"
    assert call.headers["user-agent"].startswith("medforge-cli/")
    # Piped: the user comes back as JSON on stdout.
    assert result.json()["handle"] == "ada"


def test_a_refused_token_is_not_stored(cli, cli_env):
    result = cli("login", "--url", "https://medforge.test", "--token-stdin", stdin="mf_bad\n",
                 transport=me_api().transport)
    assert result.exit_code == errors.AUTH
    assert "The token was refused by https://medforge.test" in result.stderr
    assert "invalid_token" in result.stderr
    assert not (cli_env / "config.toml").exists()


def test_login_needs_a_url_and_a_token(cli, cli_env):
    assert cli("login", "--token-stdin", stdin="mf_x\n").exit_code == errors.USAGE
    assert cli("login", "--url", "https://medforge.test", "--token-stdin", stdin="\n").exit_code == errors.USAGE
    # No terminal to prompt on, and no --token-stdin.
    result = cli("login", "--url", "https://medforge.test")
    assert result.exit_code == errors.USAGE and "--token-stdin" in result.stderr


def test_login_into_a_named_profile_and_the_url_from_the_environment(cli, cli_env, monkeypatch):
    monkeypatch.setenv("MEDFORGE_URL", "https://env.medforge.test")
    result = cli("--profile", "work", "login", "--token-stdin", stdin="mf_good\n",
                 transport=me_api().transport)
    assert result.exit_code == 0, result
    data = stored(cli_env)
    assert data["profiles"]["work"]["url"] == "https://env.medforge.test"
    assert data["default_profile"] == "work"


def test_whoami_prefers_medforge_token_over_the_stored_one(cli, cli_env, monkeypatch):
    cli("login", "--url", "https://medforge.test", "--token-stdin", stdin="mf_stored\n",
        transport=me_api("mf_stored").transport)
    monkeypatch.setenv("MEDFORGE_TOKEN", "mf_env")
    api = me_api("mf_env")
    result = cli("whoami", "--format", "table", transport=api.transport)
    assert result.exit_code == 0, result
    assert "ada" in result.stdout and "ada@example.org" in result.stdout
    assert "token from MEDFORGE_TOKEN" in result.stderr
    assert api.requests[0].headers["authorization"] == "Bearer mf_env"


def test_logout_forgets_and_optionally_revokes(cli, cli_env, logged_in):
    token_id = "8a1f0c55-0000-4000-8000-000000000001"
    api = FakeApi()
    api.add("GET", "/me/tokens", page([
        {"id": "other", "name": "ci", "prefix": "mf_zzzzzzz", "active": True},
        {"id": token_id, "name": "laptop", "prefix": logged_in[:10], "active": True}]))
    api.add("DELETE", f"/me/tokens/{token_id}", envelope({"id": token_id, "active": False}))
    result = cli("logout", "--revoke", transport=api.transport)
    assert result.exit_code == 0, result
    assert len(api.calls("DELETE", f"/me/tokens/{token_id}")) == 1
    assert "token" not in stored(cli_env)["profiles"]["default"]
    assert cli("logout").stderr.strip().endswith("holds no token.")
    assert cli("whoami").exit_code == errors.AUTH
