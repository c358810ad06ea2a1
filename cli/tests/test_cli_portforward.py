"""port-forward: path mapping, credentials, header rewriting and refusals (upstream on
httpx.MockTransport), then HTTP and WebSockets end to end against the stand-in IDE
(deploy/packs/local/ide.py) on loopback."""
from __future__ import annotations

import asyncio
import importlib.util
import os
import socket
import threading
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import requests
import websocket
from medforge_cli.errors import UsageError
from medforge_cli.portforward import Forwarder, parse_ports, remote_prefix

REPO = Path(__file__).resolve().parents[2]
REMOTE = "https://s-abcd2345.external.medforge.test"
TOKEN = "mf_forward_token"


def test_parse_ports():
    assert parse_ports("6006:6006") == (6006, 6006)
    assert parse_ports("9000:6006") == (9000, 6006)
    assert parse_ports("8888") == (8888, 8888)
    assert parse_ports("0:6006") == (0, 6006)
    for bad in ("", "a:b", "1:0", "70000:1", "1:2:3"):
        with pytest.raises(UsageError):
            parse_ports(bad)


def test_remote_prefix():
    assert remote_prefix("/proxy/{port}/", 6006) == "/proxy/6006/"
    assert remote_prefix("absproxy/{port}", 8888) == "/absproxy/8888/"
    assert remote_prefix("/", 8080) == "/"


@contextmanager
def forwarding(**kwargs):
    """A Forwarder serving on a loopback port in a thread of its own."""
    loop = asyncio.new_event_loop()
    forwarder = Forwarder(token=TOKEN, remote_port=kwargs.pop("remote_port", 6006),
                          log=kwargs.pop("log", lambda line: None), **kwargs)
    ready = threading.Event()

    def serve():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(forwarder.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield forwarder
    finally:
        asyncio.run_coroutine_threadsafe(forwarder.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


class Chunks(httpx.AsyncByteStream):
    def __init__(self, data: bytes) -> None:
        self.data = data

    async def __aiter__(self):
        if self.data:
            yield self.data


class Upstream:
    """An async MockTransport recording what reaches the 'edge'. Its answers are streams, as
    a real transport's are (a Response built with content= counts as already read)."""

    def __init__(self, respond=None) -> None:
        self.seen: list[tuple[httpx.Request, bytes]] = []
        self.respond = respond or (lambda request, body: httpx.Response(200, text="ok"))
        self.transport = httpx.MockTransport(self._handle)

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        self.seen.append((request, body))
        answer = self.respond(request, body)
        return httpx.Response(answer.status_code, headers=answer.headers, stream=Chunks(answer.content))


def local(forwarder, path="/", **kwargs) -> requests.Response:
    return requests.request(kwargs.pop("method", "GET"), f"http://127.0.0.1:{forwarder.port}{path}",
                            timeout=10, allow_redirects=False, **kwargs)


def test_requests_reach_the_port_path_with_the_token_and_the_session_host():
    upstream = Upstream()
    with forwarding(remote_base=REMOTE + "/", template="/proxy/{port}/",
                    transport=upstream.transport) as fwd:
        resp = local(fwd, "/data/plugin?run=a%20b&x=1", headers={"Authorization": "Basic dXNlcg==",
                                                               "X-App": "kept", "Cookie": "tb=1"})
    assert resp.status_code == 200 and resp.text == "ok"
    ((request, _),) = upstream.seen
    assert str(request.url) == REMOTE + "/proxy/6006/data/plugin?run=a%20b&x=1"
    assert request.headers["host"] == "s-abcd2345.external.medforge.test"
    assert request.headers.get_list("authorization") == [f"Bearer {TOKEN}"]
    assert request.headers["x-app"] == "kept" and request.headers["cookie"] == "tb=1"
    assert "connection" not in request.headers  # hop-by-hop: the local connection's own


def test_bodies_stream_with_their_length_or_chunked():
    upstream = Upstream(lambda request, body: httpx.Response(201, content=body[::-1]))
    payload = os.urandom(300_000)
    with forwarding(remote_base=REMOTE, template="/proxy/{port}/", transport=upstream.transport) as fwd:
        sized = local(fwd, "/upload", method="POST", data=payload)
        chunked = local(fwd, "/upload", method="PUT", data=iter([b"ab", b"cd", b"ef"]))
        empty = local(fwd, "/empty", method="POST", data=b"")
    assert sized.status_code == 201 and sized.content == payload[::-1]
    assert chunked.content == b"fedcba"
    assert empty.status_code == 201
    (r1, b1), (r2, b2), (r3, b3) = upstream.seen
    assert r1.headers["content-length"] == str(len(payload)) and b1 == payload
    assert b2 == b"abcdef" and r2.method == "PUT"
    assert r3.headers.get("content-length") == "0" and b3 == b""


def test_redirects_and_cookies_are_made_local():
    def respond(request, body):
        if request.url.path.endswith("/abs"):
            location = REMOTE + "/proxy/6006/next?x=1"
        elif request.url.path.endswith("/rel"):
            location = "/proxy/6006/other"
        else:
            location = "https://elsewhere.test/login"
        return httpx.Response(302, headers=[("Location", location),
                                            ("Set-Cookie", "a=1; Domain=s-abcd2345.external.medforge.test; "
                                                           "Path=/proxy/6006/; HttpOnly"),
                                            ("Set-Cookie", "b=2; Path=/")])

    with forwarding(remote_base=REMOTE, template="/proxy/{port}/",
                    transport=Upstream(respond).transport) as fwd:
        base = f"http://127.0.0.1:{fwd.port}"
        absolute = local(fwd, "/abs")
        relative = local(fwd, "/rel")
        foreign = local(fwd, "/x")
    assert absolute.headers["location"] == f"{base}/next?x=1"
    assert relative.headers["location"] == "/other"
    assert foreign.headers["location"] == "https://elsewhere.test/login"
    cookies = absolute.raw.headers.getlist("Set-Cookie")
    assert cookies == ["a=1; Path=/; HttpOnly", "b=2; Path=/"]


def test_same_origin_pages_may_call_it_other_sites_may_not():
    upstream = Upstream()
    with forwarding(remote_base=REMOTE, template="/proxy/{port}/", transport=upstream.transport) as fwd:
        own = f"http://127.0.0.1:{fwd.port}"
        ok = local(fwd, "/api", method="POST", data=b"{}", headers={"Origin": own, "Referer": own + "/page"})
        navigate = local(fwd, "/", headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"})
        foreign = local(fwd, "/api", method="POST", data=b"{}", headers={"Origin": "https://evil.example"})
        cross = local(fwd, "/api", headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"})
        rebinding = local(fwd, "/", headers={"Host": f"evil.example:{fwd.port}"})
    assert ok.status_code == 200 and navigate.status_code == 200
    for refused in (foreign, cross, rebinding):
        assert refused.status_code == 403 and "medforge port-forward" in refused.text
    assert len(upstream.seen) == 2
    request = upstream.seen[0][0]
    assert request.headers["origin"] == REMOTE
    assert request.headers["referer"] == REMOTE + "/proxy/6006/page"


def test_keep_alive_head_and_an_unreachable_session():
    def respond(request, body):
        if request.url.path.endswith("/down"):
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, content=b"x" * 10, headers={"Content-Length": "10"})

    with forwarding(remote_base=REMOTE, template="/proxy/{port}/", transport=Upstream(respond).transport) as fwd:
        with requests.Session() as http:
            first = http.get(f"http://127.0.0.1:{fwd.port}/a", timeout=10)
            head = http.head(f"http://127.0.0.1:{fwd.port}/a", timeout=10)
            second = http.get(f"http://127.0.0.1:{fwd.port}/b", timeout=10)
        down = local(fwd, "/down")
    assert first.content == b"x" * 10 and second.content == b"x" * 10
    assert head.status_code == 200 and head.headers["content-length"] == "10" and head.content == b""
    assert down.status_code == 502 and "cannot reach the session" in down.text


# --- end to end against the stand-in IDE on loopback -----------------------------------------


@pytest.fixture(scope="module")
def stand_in_ide(tmp_path_factory):
    """deploy/packs/local/ide.py serving on a loopback port (what a session container runs)."""
    workspace = tmp_path_factory.mktemp("workspace")
    os.environ["MEDFORGE_WORKSPACE"] = str(workspace)
    spec = importlib.util.spec_from_file_location("medforge_stand_in_ide", REPO / "deploy/packs/local/ide.py")
    ide = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ide)
    server = ide.Server(("127.0.0.1", 0), ide.Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    os.environ.pop("MEDFORGE_WORKSPACE", None)


def test_http_through_to_the_ide_with_a_localhost_session_host(stand_in_ide):
    # *.localhost goes to loopback whatever the system resolver says (RFC 6761).
    remote = f"http://s-abcd2345.external.medforge.localhost:{stand_in_ide}/"
    with forwarding(remote_base=remote, template="/") as fwd:
        seen = local(fwd, "/__headers", headers={"Accept-Encoding": "identity"}).json()
        payload = os.urandom(200_000)
        wrote = local(fwd, "/__write?name=pf.bin", method="POST", data=payload)
        back = local(fwd, "/__read?name=pf.bin")
    assert seen["path"] == "/__headers"
    assert seen["headers"]["host"] == f"s-abcd2345.external.medforge.localhost:{stand_in_ide}"
    assert seen["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert wrote.status_code == 201 and back.content == payload


def test_the_port_path_reaches_the_ide(stand_in_ide):
    with forwarding(remote_base=f"http://127.0.0.1:{stand_in_ide}", template="/proxy/{port}/") as fwd:
        resp = local(fwd, "/__headers")
    assert resp.status_code == 404 and resp.text == "not found\n"  # the stand-in has no /proxy/


def test_websocket_echo_through_the_forward(stand_in_ide):
    remote = f"http://s-abcd2345.external.medforge.localhost:{stand_in_ide}/"
    with forwarding(remote_base=remote, template="/") as fwd:
        ws = websocket.create_connection(f"ws://127.0.0.1:{fwd.port}/__ws", timeout=10)
        try:
            ws.send("hello through the forward")
            assert ws.recv() == "hello through the forward"
            big = os.urandom(1_000_000)
            ws.send_binary(big)
            assert ws.recv() == big
            ws.ping(b"p")
        finally:
            ws.close()
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(f"ws://127.0.0.1:{fwd.port}/__ws", timeout=10,
                                        origin="https://evil.example")
        assert refused.value.status_code == 403


def test_an_unreachable_upgrade_is_502():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    with forwarding(remote_base=f"http://127.0.0.1:{dead}", template="/") as fwd:
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(f"ws://127.0.0.1:{fwd.port}/__ws", timeout=10)
    assert refused.value.status_code == 502
