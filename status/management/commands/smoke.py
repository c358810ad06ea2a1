"""manage.py smoke URL: probe a deployment end to end over HTTP and exit non-zero on failure.

Checks, in order: liveness, readiness, the status summary, /metrics (optional), login with the
given credentials, /me, a competition read (list, then the first one's detail and leaderboard),
and with --session a real session start → running → IDE answers through the edge → stop →
stopped, using a Bearer token (given, or created for the run and revoked afterwards).
Talks to the deployment only through its public HTTP surface; it never touches the database.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.core.management.base import BaseCommand, CommandError


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    ms: float


class SmokeFailure(Exception):
    """One check failed; carries the reason shown in the summary."""


class Probe:
    def __init__(self, base_url: str, *, origin: str | None, verify: bool, timeout: float,
                 out) -> None:
        import requests

        self.base = base_url.rstrip("/")
        parts = urlsplit(self.base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CommandError(f"{base_url!r} is not an http(s) URL")
        self.parts = parts
        self.origin = origin or f"{parts.scheme}://{parts.netloc}"
        # *.localhost names loopback (RFC 6761) and browsers and curl resolve it so, but the
        # system resolver Python uses often does not: connect to 127.0.0.1, name the host.
        self.connect_base = self.base
        self.host_header = None
        if parts.scheme == "http" and (parts.hostname == "localhost"
                                       or parts.hostname.endswith(".localhost")):
            self.connect_base = f"http://127.0.0.1{_port(parts)}{parts.path.rstrip('/')}"
            self.host_header = parts.netloc
        self.http = requests.Session()
        self.http.verify = verify
        self.http.headers["User-Agent"] = "medforge-smoke/1"
        self.timeout = timeout
        self.out = out
        self.checks: list[Check] = []

    # -- plumbing -------------------------------------------------------------------------

    def request(self, method: str, path: str, *, expect: tuple[int, ...] = (200,),
                token: str | None = None, origin: bool = False, url: str | None = None,
                **kw) -> Any:
        import requests

        headers = kw.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if origin:
            headers["Origin"] = self.origin
        if url is None and self.host_header:
            headers.setdefault("Host", self.host_header)
        target = url or f"{self.connect_base}{path}"
        try:
            resp = self.http.request(method, target, headers=headers, timeout=self.timeout,
                                     allow_redirects=False, **kw)
        except requests.RequestException as exc:
            raise SmokeFailure(f"{method} {target}: {exc.__class__.__name__}: {exc}") from exc
        self._keep_cookies(resp)
        if resp.status_code not in expect:
            raise SmokeFailure(f"{method} {target} answered {resp.status_code} "
                               f"(expected {'/'.join(map(str, expect))}): {_excerpt(resp)}")
        return resp

    def _keep_cookies(self, resp) -> None:
        """Send the platform's cookies back whatever host the URL names: the session cookie is
        scoped to the base domain (a client would drop it when probing by address such as
        127.0.0.1:8001), and this client talks to one deployment only."""
        from http.cookies import SimpleCookie

        for header in resp.raw.headers.getlist("Set-Cookie") if resp.raw is not None else []:
            parsed = SimpleCookie()
            try:
                parsed.load(header)
            except Exception:  # noqa: BLE001, S112 - a malformed cookie is not ours to judge
                continue
            for name, morsel in parsed.items():
                if morsel["max-age"] in ("0",) or not morsel.value:
                    self.http.cookies.set(name, None)
                else:
                    self.http.cookies.set(name, morsel.value)

    def json_data(self, resp) -> Any:
        try:
            body = resp.json()
        except ValueError as exc:
            raise SmokeFailure(f"{resp.request.method} {resp.url}: not JSON: {_excerpt(resp)}") from exc
        if not isinstance(body, dict) or "data" not in body or "meta" not in body:
            raise SmokeFailure(f"{resp.url}: not a {{data, meta}} envelope: {_excerpt(resp)}")
        return body["data"]

    def check(self, name: str, fn) -> Any:
        start = time.perf_counter()
        try:
            detail = fn()
            ok = True
        except SmokeFailure as exc:
            ok, detail = False, str(exc)
        except Exception as exc:  # noqa: BLE001 - a bug in a probe still ends in the summary, not a traceback
            ok, detail = False, f"{exc.__class__.__name__}: {exc}"
        ms = (time.perf_counter() - start) * 1000
        text = detail if isinstance(detail, str) else ""
        self.checks.append(Check(name, ok, text, ms))
        mark = "PASS" if ok else "FAIL"
        self.out.write(f"{mark} {name} ({ms:.0f} ms){': ' + text if text else ''}")
        return detail if ok else None

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    # -- checks ---------------------------------------------------------------------------

    def healthz(self) -> str:
        resp = self.request("GET", "/healthz", expect=(200, 503))
        data = self.json_data(resp)
        if resp.status_code != 200:
            raise SmokeFailure(f"degraded: {data.get('reason') or data}")
        return data.get("status", "")

    def ready(self) -> str:
        resp = self.request("GET", "/api/ready", expect=(200, 503))
        if resp.status_code != 200:
            body = resp.json() if resp.headers.get("Content-Type", "").endswith("json") else {}
            raise SmokeFailure(f"not ready: {body.get('detail') or _excerpt(resp)}")
        return "database, redis, broker, docker, workspaces ok"

    def status(self) -> str:
        data = self.json_data(self.request("GET", "/api/v2/status"))
        gpus = data.get("gpus", {})
        return (f"build {data.get('build', {}).get('version')}; GPUs free {gpus.get('free')}/"
                f"{gpus.get('total')}; sessions running {data.get('sessions', {}).get('running')}")

    def metrics(self, token: str | None) -> str:
        resp = self.request("GET", "/metrics", token=token)
        if "medforge_sessions" not in resp.text:
            raise SmokeFailure("/metrics lacks medforge_sessions")
        return f"{len(resp.text.splitlines())} lines"

    def login(self, email: str, password: str) -> str:
        data = self.json_data(self.request(
            "POST", "/api/v2/auth/login", origin=True, json={"email": email, "password": password}))
        me = self.json_data(self.request("GET", "/api/v2/me"))
        if me.get("email", "").lower() != email.lower():
            raise SmokeFailure(f"/me answered {me.get('email')!r}, not {email!r}")
        return f"signed in as {data.get('handle') or email}"

    def competitions(self, exposure: str, slug: str | None) -> str:
        listing = self.json_data(self.request("GET", f"/api/v2/{exposure}/competitions"))
        if not isinstance(listing, list):
            raise SmokeFailure("competition list is not a list")
        if slug is None:
            if not listing:
                return "no competitions yet (run manage.py seed)"
            slug = listing[0].get("slug")
        detail = self.json_data(self.request("GET", f"/api/v2/{exposure}/competitions/{slug}"))
        board = self.json_data(self.request(
            "GET", f"/api/v2/{exposure}/competitions/{slug}/leaderboard"))
        return f"{len(listing)} listed; {detail.get('slug', slug)} has {len(board)} leaderboard rows"

    def create_token(self) -> tuple[str, str]:
        data = self.json_data(self.request(
            "POST", "/api/v2/me/tokens", expect=(201,), origin=True,
            json={"name": f"smoke-{int(time.time())}"}))
        return data["id"], data["secret"]

    def revoke_token(self, token_id: str) -> str:
        self.request("DELETE", f"/api/v2/me/tokens/{token_id}", origin=True)
        return "revoked"

    def _session(self, exposure: str, token: str, session_id: str) -> dict:
        return self.json_data(self.request(
            "GET", f"/api/v2/{exposure}/sessions/{session_id}", token=token))

    def _wait(self, exposure: str, token: str, session_id: str, want: str, limit: float) -> dict:
        deadline = time.monotonic() + limit
        delay = 0.25
        while True:
            session = self._session(exposure, token, session_id)
            if session.get("status") == want:
                return session
            if session.get("status") in ("error", "stopped") and want != session.get("status"):
                raise SmokeFailure(f"session {session_id} ended {session.get('status')}: "
                                   f"{session.get('error_message') or ''}".strip())
            if time.monotonic() > deadline:
                raise SmokeFailure(f"session {session_id} still {session.get('status')} after "
                                   f"{limit:.0f}s (wanted {want})")
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)

    def session_create(self, exposure: str, token: str, pack: str | None) -> dict:
        body = {"pack_id": pack} if pack else {}
        return self.json_data(self.request(
            "POST", f"/api/v2/{exposure}/sessions", expect=(201,), token=token, json=body))

    def session_running(self, exposure: str, token: str, session_id: str, limit: float) -> dict:
        return self._wait(exposure, token, session_id, "running", limit)

    def ide(self, session: dict, exposure: str, token: str) -> str:
        host = f"s-{session['slug']}.{exposure}.{self.parts.hostname}"
        if self.parts.scheme == "http":
            # *.localhost and other wildcard names need not resolve here: reach the edge by
            # the base URL's address and name the session host in the Host header.
            resp = self.request("GET", "/", token=token, expect=(200, 301, 302, 303, 307, 308),
                                headers={"Host": f"{host}{_port(self.parts)}"})
        else:
            resp = self.request("GET", "/", token=token, expect=(200, 301, 302, 303, 307, 308),
                                url=f"https://{host}{_port(self.parts)}/")
        if "X-Request-Id" in resp.headers:
            # Django answered the session host itself: no edge in front of this URL.
            raise SmokeFailure(f"{host} was answered by the platform, not the IDE: is "
                               f"{self.base} the edge (Caddy)?")
        return f"{host} answered {resp.status_code} through the edge"

    def session_stop(self, exposure: str, token: str, session_id: str, limit: float) -> str:
        self.request("POST", f"/api/v2/{exposure}/sessions/{session_id}/stop", expect=(202,),
                     token=token, json={})
        self._wait(exposure, token, session_id, "stopped", limit)
        return "stopped"


def _port(parts) -> str:
    return f":{parts.port}" if parts.port else ""


def _excerpt(resp) -> str:
    text = (resp.text or "").strip().replace("\n", " ")
    return text[:200] + ("…" if len(text) > 200 else "")


class Command(BaseCommand):
    help = ("Probe a MedForge deployment end to end (health, ready, status, login, a "
            "competition read; --session starts and stops a real session). Exits 1 on failure.")

    def add_arguments(self, parser):
        parser.add_argument("url", help="base URL of the platform, e.g. https://medforge.example.org")
        parser.add_argument("--email", default=os.environ.get("MEDFORGE_SMOKE_EMAIL"),
                            help="account to sign in with (env MEDFORGE_SMOKE_EMAIL)")
        parser.add_argument("--password", default=os.environ.get("MEDFORGE_SMOKE_PASSWORD"),
                            help="its password (env MEDFORGE_SMOKE_PASSWORD)")
        parser.add_argument("--token", default=os.environ.get("MEDFORGE_SMOKE_TOKEN"),
                            help="personal API token for --session (default: create one, "
                            "revoke it afterwards)")
        parser.add_argument("--session", action="store_true",
                            help="also start a session, wait for running, open its IDE, stop it")
        parser.add_argument("--exposure", choices=["external", "internal"], default="external")
        parser.add_argument("--pack", default=None, help="pack id for --session")
        parser.add_argument("--competition", default=None, help="competition slug to read")
        parser.add_argument("--metrics", action="store_true", help="also scrape /metrics")
        parser.add_argument("--metrics-token", default=os.environ.get("METRICS_TOKEN"))
        parser.add_argument("--origin", default=None,
                            help="Origin sent with cookie writes (default: the URL's origin)")
        parser.add_argument("--insecure", action="store_true", help="skip TLS verification")
        parser.add_argument("--timeout", type=float, default=15.0, help="per request, seconds")
        parser.add_argument("--session-timeout", type=float, default=300.0,
                            help="seconds to wait for running / stopped")

    def handle(self, *args, **o):
        if not o["email"] or not o["password"]:
            raise CommandError("--email and --password (or MEDFORGE_SMOKE_EMAIL/_PASSWORD) "
                               "are required: the smoke test signs in")
        probe = Probe(o["url"], origin=o["origin"], verify=not o["insecure"],
                      timeout=o["timeout"], out=self.stdout)
        self.stdout.write(f"smoke: probing {probe.base}")
        probe.check("healthz", probe.healthz)
        probe.check("ready", probe.ready)
        probe.check("status", probe.status)
        if o["metrics"]:
            probe.check("metrics", lambda: probe.metrics(o["metrics_token"]))
        logged_in = probe.check("login", lambda: probe.login(o["email"], o["password"]))
        probe.check("competitions", lambda: probe.competitions(o["exposure"], o["competition"]))
        if o["session"]:
            self._session(probe, o, logged_in is not None)
        summary = f"smoke: {len(probe.checks) - len(probe.failed)} passed, {len(probe.failed)} failed"
        if probe.failed:
            for c in probe.failed:
                self.stderr.write(f"  FAILED {c.name}: {c.detail}")
            raise CommandError(summary)
        self.stdout.write(summary)

    def _session(self, probe: Probe, o: dict, logged_in: bool) -> None:
        token, token_id = o["token"], None
        if not token:
            if not logged_in:
                probe.check("session", lambda: (_ for _ in ()).throw(
                    SmokeFailure("no --token and the login failed: cannot create one")))
                return
            created = probe.check("token_create", lambda: probe.create_token())
            if created is None:
                return
            token_id, token = created
        exposure = o["exposure"]
        created = probe.check("session_create", lambda: probe.session_create(
            exposure, token, o["pack"]))
        if created is not None:
            running = probe.check("session_running", lambda: probe.session_running(
                exposure, token, created["id"], o["session_timeout"]))
            if running is not None:
                probe.check("session_ide", lambda: probe.ide(running, exposure, token))
            # Stop whatever was created, even when it never reached running: no leftovers.
            probe.check("session_stop", lambda: probe.session_stop(
                exposure, token, created["id"], o["session_timeout"]))
        if token_id:
            probe.check("token_revoke", lambda: probe.revoke_token(token_id))
