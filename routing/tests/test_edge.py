"""End to end through real Caddy: Debian's caddy with deploy/caddy/Caddyfile.local on loopback
ports, in front of the real Django app (pytest-django's live server on the test database) and a
real session container from the local pack. Requests carry the session host in `Host`, exactly
as a browser that resolved `*.localhost` to loopback would send them."""
from __future__ import annotations

import json
import os
import subprocess
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import websocket
from django.conf import settings

from medforge.accounts import services as account_services
from routing.edge import CaddyEdge, EdgeError
from runtime.containers import DockerRuntime, SessionContainerSpec
from sessions_app.hooks import session_changed_on_commit
from sessions_app.models import Session

from .conftest import host_for, session_cookie

pytestmark = [pytest.mark.caddy, pytest.mark.docker, pytest.mark.mariadb,
              pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parents[2]
RUN = uuid.uuid4().hex[:8]
EXT_NET, INT_NET = f"mf-routing-ext-{RUN}", f"mf-routing-int-{RUN}"
COOKIE = settings.SESSION_COOKIE_NAME


def _run(cmd: list[str], timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=timeout)


def _ensure_system() -> None:
    done = subprocess.run(["bash", str(REPO / "scripts" / "ensure-system.sh")],
                          env={**os.environ, "MEDFORGE_SKIP_BROWSER": "1"},
                          capture_output=True, text=True, check=False, timeout=1200)
    if done.returncode != 0:
        pytest.fail(f"scripts/ensure-system.sh failed:\n{done.stdout[-1500:]}\n"
                    f"{done.stderr[-1500:]}")


@pytest.fixture(scope="module")
def ide_upstream():
    """A running local-pack container; its IDE's loopback address (host:port)."""
    if _run(["docker", "info"], 30).returncode != 0 or not _caddy_installed():
        _ensure_system()
    image = os.environ.get("MEDFORGE_LOCAL_PACK_IMAGE_ID", "").strip()
    if not image.startswith("sha256:"):
        done = _run(["bash", str(REPO / "deploy" / "packs" / "local" / "build.sh")], 1800)
        lines = done.stdout.split()
        if done.returncode != 0 or not lines or not lines[-1].startswith("sha256:"):
            pytest.fail(f"deploy/packs/local/build.sh failed:\n{done.stderr[-3000:]}")
        image = lines[-1]
    runtime = DockerRuntime(gpu_mode="none", publish_mode="loopback", cpu_limit=1.0,
                            memory_limit="256m", pids_limit=128, shm_size="32m",
                            external_network=EXT_NET, internal_network=INT_NET,
                            ready_poll_interval_s=0.05)
    spec = SessionContainerSpec(session_id=f"pytest-routing-{RUN}", slug=f"rt{RUN}",
                                user_id="0", exposure="external", image=image)
    info = runtime.run(spec)
    try:
        info = runtime.wait_ready(info.id, info.upstream, timeout_s=60)
        yield info.upstream
    finally:
        runtime.remove_by_name(spec.container_name)
        runtime.close()
        _run(["docker", "network", "rm", EXT_NET, INT_NET], 60)


def _caddy_installed() -> bool:
    return _run(["sh", "-c", "command -v caddy"], 10).returncode == 0


def _app_address(live_server) -> str:
    host, port = live_server.thread.host, live_server.thread.port
    return f"{'127.0.0.1' if host == 'localhost' else host}:{port}"


@pytest.fixture(scope="module")
def edge(live_server, ide_upstream):
    """Caddy with the shipped local Caddyfile in front of the live Django app."""
    try:
        caddy = CaddyEdge(app_upstream=_app_address(live_server)).start()
    except EdgeError as exc:
        pytest.fail(str(exc))
    yield caddy
    caddy.stop()


class Browser:
    """Talks to the edge as a browser on `*.localhost` would (Host header, cookies)."""

    def __init__(self, edge: CaddyEdge) -> None:
        self.port = edge.edge_port
        self.http = requests.Session()

    def get(self, host: str, path: str = "/", *, cookie: str | None = None,
            cookies: str = "", headers: dict | None = None, **kwargs) -> requests.Response:
        return self.request("GET", host, path, cookie=cookie, cookies=cookies, headers=headers,
                            **kwargs)

    def request(self, method: str, host: str, path: str = "/", *, cookie: str | None = None,
                cookies: str = "", headers: dict | None = None, **kwargs) -> requests.Response:
        all_headers = {"Host": f"{host}:{self.port}", **(headers or {})}
        jar = "; ".join(c for c in (cookies, f"{COOKIE}={cookie}" if cookie else "") if c)
        if jar:
            all_headers["Cookie"] = jar
        return self.http.request(method, f"http://127.0.0.1:{self.port}{path}",
                                 headers=all_headers, timeout=20, allow_redirects=False,
                                 **kwargs)

    def websocket(self, host: str, *, cookie: str | None = None, token: str | None = None):
        header = [f"Authorization: Bearer {token}"] if token else []
        return websocket.create_connection(
            f"ws://127.0.0.1:{self.port}/__ws", host=f"{host}:{self.port}",
            cookie=f"{COOKIE}={cookie}" if cookie else None, header=header, timeout=10)


@pytest.fixture
def browser(edge) -> Browser:
    return Browser(edge)


@pytest.fixture
def running(db, ide_upstream):
    """running(owner, exposure="external") → a running Session row whose upstream is the
    real container."""
    from sessions_app.factories import GPUFactory, PackFactory, SessionFactory

    made = []

    def make(owner, exposure: str = "external", status: str = "running"):
        s = SessionFactory(owner=owner, exposure=exposure, status=status,
                           gpu=GPUFactory(index=len(made)), pack=PackFactory(slug="edge-pack"),
                           upstream=ide_upstream if status == "running" else "")
        made.append(s)
        return s

    return make


def assert_ide(resp: requests.Response) -> None:
    assert resp.status_code == 200, (resp.status_code, resp.text[:300])
    assert "MedForge stand-in IDE" in resp.text


def assert_refused(resp: requests.Response, status: int, code: str | None = None) -> None:
    assert resp.status_code == status, (resp.status_code, resp.text[:300])
    assert "MedForge stand-in IDE" not in resp.text
    if code is not None:
        assert resp.headers["Content-Type"].startswith("application/problem+json")
        assert resp.json()["code"] == code


def echoed_headers(resp: requests.Response) -> dict:
    assert resp.status_code == 200, (resp.status_code, resp.text[:300])
    return {k.lower(): v for k, v in resp.json()["headers"].items()}


# --- the decision through Caddy ----------------------------------------------------------------

def test_no_credentials_is_401(browser, owner, running):
    s = running(owner)
    assert_refused(browser.get(host_for(s.slug)), 401, "not_authenticated")


def test_a_browser_without_sign_in_is_sent_to_login_with_the_ide_as_next(browser, owner, stranger,
                                                                        running):
    s = running(owner)
    host = host_for(s.slug)
    resp = browser.get(host, "/folder/?x=1&y=2", headers={"Accept": "text/html,*/*;q=0.8"})
    assert resp.status_code == 302, (resp.status_code, resp.text[:300])
    location = resp.headers["Location"]
    assert location.startswith(f"http://medforge.localhost:{browser.port}/login/?next=")
    assert parse_qs(urlsplit(location).query)["next"] == [f"http://{host}:{browser.port}/folder/?x=1&y=2"]
    assert "X-Medforge-Login" not in resp.headers
    # Scripts, API clients and WebSocket handshakes keep the plain 401 (and no login header).
    plain = browser.get(host, headers={"Accept": "application/json"})
    assert_refused(plain, 401, "not_authenticated")
    assert "X-Medforge-Login" not in plain.headers and "WWW-Authenticate" in plain.headers
    # Only a missing sign-in redirects: a signed-in stranger's browser still gets 403.
    assert_refused(browser.get(host, cookie=session_cookie(stranger), headers={"Accept": "text/html"}),
                   403, "permission_denied")


def test_stranger_403_owner_200_admin_200(browser, owner, stranger, admin, running):
    s = running(owner)
    assert_refused(browser.get(host_for(s.slug), cookie=session_cookie(stranger)),
                   403, "permission_denied")
    assert_ide(browser.get(host_for(s.slug), cookie=session_cookie(owner)))
    assert_ide(browser.get(host_for(s.slug), cookie=session_cookie(admin)))


def test_internal_host_needs_the_entitlement(browser, owner, entitled, running):
    mine = running(owner, "internal")
    theirs = running(entitled, "internal")
    assert_refused(browser.get(host_for(mine.slug, "internal"), cookie=session_cookie(owner)),
                   403, "internal_access_required")
    assert_ide(browser.get(host_for(theirs.slug, "internal"), cookie=session_cookie(entitled)))


def test_the_other_exposures_host_is_404(browser, owner, running):
    s = running(owner, "external")
    assert_refused(browser.get(host_for(s.slug, "internal"), cookie=session_cookie(owner)),
                   404, "session_not_found")


def test_unknown_slug_is_404(browser, owner):
    assert_refused(browser.get(host_for("zzzzzzzz"), cookie=session_cookie(owner)),
                   404, "session_not_found")


def test_hosts_that_are_not_session_hosts_are_404(browser, owner, running):
    s = running(owner)
    cookie = session_cookie(owner)
    # Under a session wildcard but not s-<slug>: Django says no.
    assert_refused(browser.get(f"x-{s.slug}.external.{settings.BASE_DOMAIN}", cookie=cookie),
                   404, "not_found")
    assert_refused(browser.get(f"s-{s.slug}x.external.{settings.BASE_DOMAIN}", cookie=cookie),
                   404, "not_found")
    # Not ours at all: Caddy's catch-all.
    assert_refused(browser.get(f"s-{s.slug}.external.evil.org", cookie=cookie), 404)
    assert_refused(browser.get(f"s-{s.slug}.{settings.BASE_DOMAIN}", cookie=cookie), 404)


def test_stopped_session_is_404_and_a_stop_applies_at_once(browser, owner, running):
    stopped = running(owner, status="stopped")
    cookie = session_cookie(owner)
    assert_refused(browser.get(host_for(stopped.slug), cookie=cookie), 404, "session_not_found")
    s = running(owner)
    assert_ide(browser.get(host_for(s.slug), cookie=cookie))
    Session.objects.filter(pk=s.pk).update(status="stopping")
    session_changed_on_commit(s.slug)  # what the sessions services do on every change
    assert_refused(browser.get(host_for(s.slug), cookie=cookie), 404, "session_not_found")


@pytest.mark.parametrize("path", ["/api/v2/auth/session-proxy",
                                  "/api/v2/auth/session-proxy?next=/",
                                  "/API/v2/auth/session-proxy"])
def test_session_proxy_path_on_a_session_host_is_403(browser, owner, running, path):
    s = running(owner)
    assert_refused(browser.get(host_for(s.slug), path), 403)
    assert_refused(browser.get(host_for(s.slug), path, cookie=session_cookie(owner)), 403)


def test_spoofed_upstream_headers_are_ignored(browser, owner, stranger, running, ide_upstream):
    s = running(owner)
    spoof = {"X-Upstream": ide_upstream, "X-Medforge-Upstream": ide_upstream}
    # A stranger naming the real upstream himself gets nowhere...
    assert_refused(browser.get(host_for(s.slug), cookie=session_cookie(stranger),
                               headers=spoof), 403)
    assert_refused(browser.get(host_for(s.slug), headers=spoof), 401)
    # ...and the owner naming another upstream still reaches the session's own IDE.
    elsewhere = {"X-Upstream": "127.0.0.1:9", "X-Medforge-Upstream": "127.0.0.1:9"}
    resp = browser.get(host_for(s.slug), "/__headers", cookie=session_cookie(owner),
                       headers=elsewhere)
    seen = echoed_headers(resp)
    assert "x-upstream" not in seen and "x-medforge-upstream" not in seen


def test_the_container_never_sees_platform_credentials(browser, admin, owner, running):
    s = running(owner)
    cookie = session_cookie(admin)
    resp = browser.get(host_for(s.slug), "/__headers", cookie=cookie,
                       cookies="theme=dark; mf_sessionx=mine",
                       headers={"Authorization": "Bearer not-for-the-ide",
                                "Cookie2": "unused"})
    seen = echoed_headers(resp)
    assert "authorization" not in seen
    jar = seen.get("cookie", "")
    assert cookie not in jar and f"{COOKIE}=" not in jar.replace("mf_sessionx=", "")
    assert "mf_csrftoken" not in jar
    # The IDE's own cookies survive.
    assert "theme=dark" in jar and "mf_sessionx=mine" in jar
    assert seen["host"].startswith(host_for(s.slug))


def test_platform_cookie_first_or_alone_is_removed(browser, owner, running):
    s = running(owner)
    cookie = session_cookie(owner)
    for cookies in ("", "mf_csrftoken=abc", "a=1; mf_csrftoken=abc; b=2"):
        jar = echoed_headers(browser.get(host_for(s.slug), "/__headers", cookie=cookie,
                                         cookies=cookies)).get("cookie", "")
        assert "mf_" not in jar, jar
        assert cookie not in jar


def test_bearer_token_opens_the_owners_session(browser, owner, stranger, running):
    s = running(owner)
    _, secret = account_services.token_create(user=owner, name="cli")
    resp = browser.get(host_for(s.slug), "/__headers",
                       headers={"Authorization": f"Bearer {secret}"})
    assert "authorization" not in echoed_headers(resp)
    _, other = account_services.token_create(user=stranger, name="cli")
    assert_refused(browser.get(host_for(s.slug), headers={"Authorization": f"Bearer {other}"}),
                   403, "permission_denied")


def test_request_bodies_reach_the_ide_intact(browser, owner, running):
    s = running(owner)
    cookie = session_cookie(owner)
    payload = os.urandom(256 * 1024)
    resp = browser.request("POST", host_for(s.slug), f"/__write?name=edge-{RUN}.bin",
                           cookie=cookie, data=payload)
    assert resp.status_code == 201, resp.text[:300]
    back = browser.get(host_for(s.slug), f"/__read?name=edge-{RUN}.bin", cookie=cookie)
    assert back.content == payload


# --- WebSockets ----------------------------------------------------------------------------------

def test_websocket_echo_for_the_owner(browser, owner, running):
    s = running(owner)
    ws = browser.websocket(host_for(s.slug), cookie=session_cookie(owner))
    try:
        ws.send("hello through caddy")
        assert ws.recv() == "hello through caddy"
        ws.send_binary(b"\x00\x01\x02")
        assert ws.recv() == b"\x00\x01\x02"
    finally:
        ws.close()


def test_websocket_by_token(browser, owner, running):
    s = running(owner)
    _, secret = account_services.token_create(user=owner, name="cli")
    ws = browser.websocket(host_for(s.slug), token=secret)
    try:
        ws.send("token")
        assert ws.recv() == "token"
    finally:
        ws.close()


@pytest.mark.parametrize("who", ["stranger", "nobody"])
def test_websocket_is_refused_for_others(browser, owner, stranger, running, who):
    s = running(owner)
    cookie = session_cookie(stranger) if who == "stranger" else None
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        browser.websocket(host_for(s.slug), cookie=cookie)
    assert refused.value.status_code == (403 if who == "stranger" else 401)


# --- Caddy's own guards, observed from a recording auth service -------------------------------

class _RecordingAuth(BaseHTTPRequestHandler):
    """Stands in for Django's auth endpoint: records what Caddy's auth call carries and allows
    it, naming `upstream` (None: names none, like a broken deployment)."""

    upstream: str | None = None
    seen: list = []

    def do_GET(self):
        type(self).seen.append({"path": self.path, "method": self.command,
                                "headers": {k.lower(): v for k, v in self.headers.items()}})
        self.send_response(200)
        if type(self).upstream:
            self.send_header("X-Upstream", type(self).upstream)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def recording_edge(ide_upstream):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RecordingAuth)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    caddy = CaddyEdge(app_upstream=f"127.0.0.1:{server.server_address[1]}").start()
    yield caddy
    caddy.stop()
    server.shutdown()


@pytest.fixture
def auth_service(recording_edge):
    _RecordingAuth.seen = []
    _RecordingAuth.upstream = None
    yield _RecordingAuth
    _RecordingAuth.upstream = None


def test_no_upstream_from_auth_is_502_even_with_spoofed_headers(recording_edge, auth_service,
                                                                ide_upstream):
    browser = Browser(recording_edge)
    for spoof in ({}, {"X-Upstream": ide_upstream}, {"X-Medforge-Upstream": ide_upstream},
                  {"X-Upstream": ide_upstream, "X-Medforge-Upstream": ide_upstream}):
        resp = browser.get(host_for("abcdefgh"), "/__headers", headers=spoof)
        assert resp.status_code == 502, (spoof, resp.status_code, resp.text[:200])
        assert "MedForge stand-in IDE" not in resp.text and "headers" not in resp.text


def test_the_auth_call_gets_credentials_and_host_but_no_spoofed_upstream(
        recording_edge, auth_service, ide_upstream):
    auth_service.upstream = ide_upstream
    browser = Browser(recording_edge)
    resp = browser.request("POST", host_for("abcdefgh"), "/__headers?x=1", cookie="c00kie",
                           headers={"Authorization": "Bearer tok", "X-Upstream": "10.0.0.1:1",
                                    "X-Medforge-Upstream": "10.0.0.1:1"}, data=b"body")
    assert resp.status_code == 200
    (call,) = auth_service.seen
    # Caddy keeps the original query on the auth call; the decision never reads it.
    assert call["method"] == "GET" and call["path"].split("?")[0] == "/api/v2/auth/session-proxy"
    h = call["headers"]
    assert h["host"] == f"{host_for('abcdefgh')}:{recording_edge.edge_port}"
    assert f"{COOKIE}=c00kie" in h["cookie"] and h["authorization"] == "Bearer tok"
    assert h["x-forwarded-method"] == "POST" and h["x-forwarded-uri"] == "/__headers?x=1"
    assert "x-upstream" not in h and "x-medforge-upstream" not in h
    assert "content-length" not in h  # the body goes to the IDE only


def test_a_websocket_handshake_reaches_auth_as_a_plain_get(recording_edge, auth_service,
                                                           ide_upstream):
    auth_service.upstream = ide_upstream
    ws = Browser(recording_edge).websocket(host_for("abcdefgh"), cookie="c00kie")
    try:
        ws.send("ping")
        assert ws.recv() == "ping"
    finally:
        ws.close()
    (call,) = auth_service.seen
    assert call["method"] == "GET"
    assert "upgrade" not in call["headers"] and "connection" not in {
        k for k, v in call["headers"].items() if "upgrade" in v.lower()}
    assert "sec-websocket-key" in call["headers"]  # the rest of the request is untouched


def test_platform_hosts_reach_the_app(browser, edge):
    for host in settings.PLATFORM_HOSTS:
        resp = browser.get(host, "/healthz")
        assert resp.status_code in (200, 503), (host, resp.status_code)
        assert json.loads(resp.text)["data"]["status"] in ("ok", "degraded")
