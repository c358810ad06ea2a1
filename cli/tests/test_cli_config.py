"""Config file: location, mode 0600, TOML round trip, and the precedence of flags, environment
and profiles."""
from __future__ import annotations

import os
import stat
import tomllib

import pytest
from medforge_cli import config
from medforge_cli.config import ConfigFile, normalize_url, resolve
from medforge_cli.errors import AuthError, UsageError


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("raw, expected", [
    ("https://medforge.example.org", "https://medforge.example.org"),
    ("https://medforge.example.org/", "https://medforge.example.org"),
    ("https://medforge.example.org/api/v2/", "https://medforge.example.org"),
    ("https://medforge.example.org/api", "https://medforge.example.org"),
    ("medforge.example.org", "https://medforge.example.org"),
    ("medforge.localhost:8000", "http://medforge.localhost:8000"),
    ("localhost:8000", "http://localhost:8000"),
    ("127.0.0.1:8000/", "http://127.0.0.1:8000"),
    ("https://user:secret@medforge.example.org", "https://medforge.example.org"),
    ("  https://site.test/sub/path/  ", "https://site.test/sub/path"),
])
def test_normalize_url(raw, expected):
    assert normalize_url(raw) == expected


@pytest.mark.parametrize("raw", ["", "   ", "ftp://x.org", "https://"])
def test_normalize_url_refuses(raw):
    with pytest.raises(UsageError):
        normalize_url(raw)


def test_the_default_location_is_the_platform_config_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("MEDFORGE_CONFIG_DIR")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert config.config_path() == tmp_path / "xdg" / "medforge" / "config.toml"


def test_save_writes_mode_0600_in_a_0700_directory(cli_env):
    old = os.umask(0o022)
    try:
        file = ConfigFile(cli_env / "config.toml")
        file.set_profile("default", url="https://a.test", token="mf_secret")
    finally:
        os.umask(old)
    assert mode(cli_env) == 0o700
    assert mode(file.path) == 0o600
    # A rewrite keeps it private even if someone loosened it in between.
    os.chmod(file.path, 0o644)
    file.set_profile("default", token="mf_other")
    assert mode(file.path) == 0o600
    assert not [p for p in cli_env.iterdir() if p.name.endswith(".tmp")]


def test_toml_round_trip_with_awkward_values(cli_env):
    file = ConfigFile(cli_env / "config.toml")
    awkward = 'quote " backslash \\ tab \t newline \n control \x01 unicode é'
    file.set_profile("we.ird-name_1", url="https://a.test", token=awkward)
    data = tomllib.loads(file.path.read_text())
    assert data["profiles"]["we.ird-name_1"]["token"] == awkward
    assert data["default_profile"] == "we.ird-name_1"
    assert file.load() == data


def test_a_file_readable_by_others_is_warned_about(cli_env, capsys):
    file = ConfigFile(cli_env / "config.toml")
    file.set_profile("default", url="https://a.test", token="mf_x")
    os.chmod(file.path, 0o644)
    file.load()
    assert "readable by other users" in capsys.readouterr().err


def test_invalid_toml_is_a_usage_error(cli_env):
    cli_env.mkdir(parents=True)
    (cli_env / "config.toml").write_text("this is = = not toml")
    with pytest.raises(UsageError, match="not valid TOML"):
        resolve()


def test_precedence_environment_over_the_profile(cli_env):
    file = ConfigFile(cli_env / "config.toml")
    file.set_profile("default", url="https://stored.test", token="mf_stored")
    stored = resolve(env={})
    assert (stored.url, stored.token, stored.url_source, stored.token_source) == \
        ("https://stored.test", "mf_stored", "config", "config")
    env = {"MEDFORGE_URL": "https://env.test/", "MEDFORGE_TOKEN": "mf_env"}
    overridden = resolve(env=env)
    assert (overridden.url, overridden.token) == ("https://env.test", "mf_env")
    assert (overridden.url_source, overridden.token_source) == ("MEDFORGE_URL", "MEDFORGE_TOKEN")
    # --url (login) beats the environment.
    assert resolve(url="https://flag.test", env=env).url == "https://flag.test"


def test_precedence_of_profiles(cli_env):
    file = ConfigFile(cli_env / "config.toml")
    file.set_profile("default", url="https://default.test", token="mf_d")
    file.set_profile("work", url="https://work.test", token="mf_w")
    file.set_profile("lab", url="https://lab.test", token="mf_l")
    assert resolve(env={}).profile == "default"  # the first profile written is the default
    assert resolve(env={"MEDFORGE_PROFILE": "work"}).url == "https://work.test"
    assert resolve(profile="lab", env={"MEDFORGE_PROFILE": "work"}).url == "https://lab.test"
    empty = resolve(profile="nothing-here", env={})
    assert (empty.url, empty.token) == (None, None)
    with pytest.raises(AuthError, match="Not logged in"):
        empty.require_token()
    with pytest.raises(UsageError, match="No MedForge URL"):
        empty.require_url()
    with pytest.raises(UsageError, match="Invalid profile"):
        resolve(profile="../etc", env={})


def test_port_forward_path_precedence(cli_env):
    file = ConfigFile(cli_env / "config.toml")
    assert resolve(env={}).port_forward_path == "/proxy/{port}/"
    file.set_profile("default", port_forward_path="/absproxy/{port}/")
    assert resolve(env={}).port_forward_path == "/absproxy/{port}/"
    assert resolve(env={"MEDFORGE_PORT_FORWARD_PATH": "/"}).port_forward_path == "/"


def test_remove_token_keeps_the_url(cli_env):
    file = ConfigFile(cli_env / "config.toml")
    file.set_profile("default", url="https://a.test", token="mf_x")
    assert file.remove_token("default") is True
    assert file.remove_token("default") is False
    assert file.load()["profiles"]["default"] == {"url": "https://a.test"}
