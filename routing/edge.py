"""The local edge: Debian's Caddy with deploy/caddy/Caddyfile.local on loopback ports.

Used by the run command (`manage.py edge`), the end-to-end tests and bench/forward_auth.py, so
all three run exactly the Caddyfile that ships. No Django import: the bench uses it too.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCAL_CADDYFILE = REPO_ROOT / "deploy" / "caddy" / "Caddyfile.local"
PRODUCTION_CADDYFILE = REPO_ROOT / "deploy" / "caddy" / "Caddyfile"


class EdgeError(RuntimeError):
    """Caddy is missing, refused the configuration, or did not start listening."""


def caddy_binary() -> str:
    path = shutil.which("caddy")
    if path is None:
        raise EdgeError("caddy is not installed (scripts/ensure-system.sh installs Debian's caddy)")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def edge_env(*, edge_port: int, app_upstream: str, base_domain: str | None = None,
             admin: str = "off", workdir: str | None = None) -> dict[str, str]:
    """The environment Caddyfile.local reads (plus Caddy's own state directories)."""
    env = dict(os.environ)
    env.update(MEDFORGE_EDGE_PORT=str(edge_port), MEDFORGE_APP_UPSTREAM=app_upstream,
               MEDFORGE_CADDY_ADMIN=admin)
    if base_domain:
        env["MEDFORGE_BASE_DOMAIN"] = base_domain
    if workdir:
        # Caddy writes its autosave and data under XDG dirs; keep them out of $HOME.
        env["XDG_DATA_HOME"] = os.path.join(workdir, "data")
        env["XDG_CONFIG_HOME"] = os.path.join(workdir, "config")
    return env


class CaddyEdge:
    """One Caddy process serving Caddyfile.local; `start()` returns once its port accepts."""

    def __init__(self, *, app_upstream: str, edge_port: int | None = None,
                 base_domain: str | None = None, caddyfile: Path | str = LOCAL_CADDYFILE) -> None:
        self.app_upstream = app_upstream
        self.edge_port = edge_port or free_port()
        self.base_domain = base_domain
        self.caddyfile = Path(caddyfile)
        self.workdir = tempfile.mkdtemp(prefix="medforge-edge-")
        self.log_path = Path(self.workdir) / "caddy.log"
        self.process: subprocess.Popen | None = None

    @property
    def env(self) -> dict[str, str]:
        return edge_env(edge_port=self.edge_port, app_upstream=self.app_upstream,
                        base_domain=self.base_domain, workdir=self.workdir)

    def start(self, timeout_s: float = 20.0) -> CaddyEdge:
        binary = caddy_binary()
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [binary, "run", "--config", str(self.caddyfile), "--adapter", "caddyfile"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EdgeError(f"caddy exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.edge_port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise EdgeError(f"caddy did not listen on {self.edge_port} in {timeout_s}s:\n"
                        f"{self.log_tail()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def __enter__(self) -> CaddyEdge:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def adapt(caddyfile: Path | str, env: dict[str, str]) -> dict:
    """`caddy adapt` a Caddyfile to its JSON config (raises EdgeError with Caddy's message)."""
    import json

    done = subprocess.run(
        [caddy_binary(), "adapt", "--config", str(caddyfile), "--adapter", "caddyfile"],
        env={**os.environ, **env}, capture_output=True, text=True, check=False, timeout=30,
    )
    if done.returncode != 0:
        raise EdgeError(done.stderr.strip() or done.stdout.strip())
    return json.loads(done.stdout)
