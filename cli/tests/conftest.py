"""Fixtures for the CLI tests: an isolated config directory and environment, a fake API on
httpx.MockTransport, and `cli(...)` which runs the real entry point in-process."""
from __future__ import annotations

import io
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

try:
    import medforge_cli  # noqa: F401 — installed by scripts/test (pip install -e ./cli)
except ImportError:  # a bare checkout: the offline tests import it from the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

ENV_VARS = ("MEDFORGE_URL", "MEDFORGE_TOKEN", "MEDFORGE_PROFILE", "MEDFORGE_FORMAT",
            "MEDFORGE_PORT_FORWARD_PATH", "MEDFORGE_CONFIG_DIR")


@pytest.fixture(autouse=True)
def _clear_cache(request):
    """Overrides the project's per-test `cache.clear()`: it flushes the whole Redis database,
    which the live tests' Celery broker shares. Deleting this run's own prefixed keys is the
    same reset for the cache; tests without a database need none."""
    if request.node.get_closest_marker("django_db") is None:
        yield
        return
    from django.core.cache import cache

    if hasattr(cache, "delete_pattern"):
        cache.delete_pattern("*")
    else:
        cache.clear()
    yield


@pytest.fixture(autouse=True)
def cli_env(monkeypatch, tmp_path):
    """No real user configuration or MEDFORGE_* variable leaks into a test."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    config_dir = tmp_path / "medforge-config"
    monkeypatch.setenv("MEDFORGE_CONFIG_DIR", str(config_dir))
    return config_dir


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    def json(self):
        import json

        return json.loads(self.stdout)


@pytest.fixture
def cli(capsys, monkeypatch):
    """cli(*args, transport=None, stdin="") → Result, running medforge_cli.app.main."""
    from medforge_cli.app import main

    def run(*args: str, transport=None, async_transport=None, stdin: str = "") -> Result:
        capsys.readouterr()
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        with pytest.raises(SystemExit) as exited:
            main(list(args), transport=transport, async_transport=async_transport)
        out, err = capsys.readouterr()
        code = exited.value.code
        return Result(code if isinstance(code, int) else (0 if code is None else 1), out, err)

    return run


@pytest.fixture
def fake_api():
    from cli_fakes import FakeApi

    return FakeApi()


@pytest.fixture
def logged_in(cli_env):
    """A stored profile for https://medforge.test with token mf_test_token_0001."""
    from medforge_cli.config import ConfigFile

    ConfigFile(cli_env / "config.toml").set_profile("default", url="https://medforge.test",
                                                    token="mf_test_token_0001")
    return "mf_test_token_0001"
