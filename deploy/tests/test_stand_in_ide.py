"""The stand-in IDE of the local pack (deploy/packs/local/ide.py), run as a plain subprocess:
page, header echo, WebSocket echo, workspace writes, keep-alive and clean shutdown."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import websocket

IDE_PY = Path(__file__).resolve().parents[1] / "packs" / "local" / "ide.py"
SESSION_ID = "0b7c1f2e-6a53-4c55-9c1e-5f1f3c0d9a11"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StandIn:
    def __init__(self, proc: subprocess.Popen, port: int, workspace: Path, log: Path) -> None:
        self.proc, self.port, self.workspace, self.log = proc, port, workspace, log
        self.base = f"http://127.0.0.1:{port}"

    def request(self, method: str, path: str, body: bytes | None = None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()


def _start(workspace: Path, log: Path) -> StandIn:
    port = _free_port()
    env = dict(
        os.environ,
        IDE_HOST="127.0.0.1",
        IDE_PORT=str(port),
        MEDFORGE_WORKSPACE=str(workspace),
        MEDFORGE_SESSION_ID=SESSION_ID,
    )
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, str(IDE_PY)], env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as resp:
                if resp.status == 200:
                    return StandIn(proc, port, workspace, log)
        except (urllib.error.URLError, OSError):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("stand-in IDE did not come up:\n" + log.read_text())
        time.sleep(0.05)


def _stop(standin: StandIn) -> None:
    if standin.proc.poll() is None:
        standin.proc.kill()
        standin.proc.wait(5)


@pytest.fixture(scope="module")
def ide(tmp_path_factory):
    standin = _start(tmp_path_factory.mktemp("workspace"), tmp_path_factory.mktemp("log") / "ide.log")
    yield standin
    _stop(standin)


def test_healthz(ide):
    status, headers, body = ide.request("GET", "/healthz")
    assert (status, body) == (200, b"ok")
    assert headers["Content-Length"] == "2"


def test_page_shows_title_session_and_workspace(ide):
    status, headers, body = ide.request("GET", "/")
    page = body.decode()
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert "<title>MedForge stand-in IDE</title>" in page
    assert SESSION_ID in page
    assert str(ide.workspace) in page


def test_header_echo_returns_headers_exactly_as_received(ide):
    conn = http.client.HTTPConnection("127.0.0.1", ide.port, timeout=10)
    conn.putrequest("GET", "/__headers?probe=1", skip_accept_encoding=True)
    conn.putheader("X-MedForge-Probe", "  spaced value ")
    conn.putheader("Cookie", "medforge_session=abc123; theme=dark")
    conn.putheader("X-Repeated", "one")
    conn.putheader("X-Repeated", "two")
    conn.endheaders()
    resp = conn.getresponse()
    echo = json.loads(resp.read())
    conn.close()

    assert resp.status == 200
    assert echo["method"] == "GET"
    assert echo["path"] == "/__headers?probe=1"
    headers = echo["headers"]
    assert headers["x-medforge-probe"] == "spaced value "  # leading blanks are not part of a value
    assert headers["cookie"] == "medforge_session=abc123; theme=dark"
    assert headers["x-repeated"] == ["one", "two"]
    assert headers["host"] == f"127.0.0.1:{ide.port}"
    assert all(name == name.lower() for name in headers)


def test_keep_alive_serves_several_requests_on_one_connection(ide):
    conn = http.client.HTTPConnection("127.0.0.1", ide.port, timeout=10)
    try:
        conn.request("GET", "/healthz")
        first = conn.getresponse()
        assert first.read() == b"ok"
        sock = conn.sock
        for path in ("/__headers", "/", "/healthz"):
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200
            assert conn.sock is sock, "the server closed a keep-alive connection"
    finally:
        conn.close()


def test_websocket_echoes_text_and_binary(ide):
    ws = websocket.create_connection(f"ws://127.0.0.1:{ide.port}/__ws", timeout=10)
    try:
        ws.send("hello, wörld")
        assert ws.recv() == "hello, wörld"

        payload = bytes(range(256)) * 300  # > 64 KiB: exercises the 64-bit length form
        ws.send_binary(payload)
        opcode, data = ws.recv_data()
        assert opcode == websocket.ABNF.OPCODE_BINARY
        assert data == payload

        ws.ping(b"are-you-there")
        opcode, frame = ws.recv_data_frame(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_PONG
        assert frame.data == b"are-you-there"

        # A fragmented text message comes back whole.
        ws.send_frame(websocket.ABNF.create_frame("frag", websocket.ABNF.OPCODE_TEXT, fin=0))
        ws.send_frame(websocket.ABNF.create_frame("mented", websocket.ABNF.OPCODE_CONT, fin=1))
        assert ws.recv() == "fragmented"
    finally:
        ws.close()


def _raw_ws(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        b"GET /__ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1024)
    assert head.startswith(b"HTTP/1.1 101")
    # The RFC 6455 §1.3 example key and its accept value.
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
    return sock


def _read_frame(sock: socket.socket) -> tuple[int, bytes]:
    def exact(n):
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            assert chunk, "connection closed"
            buf += chunk
        return buf

    b1, b2 = exact(2)
    assert not b2 & 0x80, "server frames are never masked"
    length = b2 & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", exact(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", exact(8))
    return b1 & 0x0F, exact(length)


def test_websocket_rejects_unmasked_client_frames_with_1002(ide):
    sock = _raw_ws(ide.port)
    try:
        sock.sendall(b"\x81\x02hi")  # FIN + text, no mask bit
        opcode, payload = _read_frame(sock)
        assert opcode == 0x8
        assert struct.unpack("!H", payload[:2])[0] == 1002
    finally:
        sock.close()


def test_websocket_close_handshake_echoes_the_code(ide):
    sock = _raw_ws(ide.port)
    try:
        mask = b"\x01\x02\x03\x04"
        body = struct.pack("!H", 1000) + b"bye"
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(body))
        sock.sendall(bytes([0x88, 0x80 | len(body)]) + mask + masked)
        opcode, payload = _read_frame(sock)
        assert (opcode, payload) == (0x8, struct.pack("!H", 1000))
        assert sock.recv(16) == b""  # the server then closes the TCP connection
    finally:
        sock.close()


def test_websocket_route_without_upgrade_answers_426(ide):
    status, headers, _ = ide.request("GET", "/__ws")
    assert status == 426
    assert headers["Upgrade"] == "websocket"


def test_write_puts_the_body_into_the_workspace(ide):
    body = b"epoch,loss\n1,0.93\n2,0.41\n"
    status, _, raw = ide.request("POST", "/__write?name=metrics.csv", body=body)
    assert status == 201
    result = json.loads(raw)
    assert result["bytes"] == len(body)
    assert result["sha256"] == hashlib.sha256(body).hexdigest()
    assert (ide.workspace / "metrics.csv").read_bytes() == body

    status, _, back = ide.request("GET", "/__read?name=metrics.csv")
    assert (status, back) == (200, body)
    status, _, page = ide.request("GET", "/")
    assert b"metrics.csv" in page


@pytest.mark.parametrize("name", ["", "..", ".", "a/b", "../escape", "x%00y"])
def test_write_refuses_names_outside_the_workspace(ide, name):
    status, _, _ = ide.request("POST", f"/__write?name={name}", body=b"nope")
    assert status == 400
    assert not (ide.workspace.parent / "escape").exists()


def test_write_without_name_is_refused(ide):
    status, _, _ = ide.request("POST", "/__write", body=b"x")
    assert status == 400


def test_unknown_path_is_404_and_logged(ide):
    status, _, _ = ide.request("GET", "/nowhere")
    assert status == 404
    deadline = time.monotonic() + 5
    while '"GET /nowhere HTTP/1.1" 404' not in ide.log.read_text():
        assert time.monotonic() < deadline, ide.log.read_text()
        time.sleep(0.05)


def test_one_log_line_per_request(ide):
    def lines():
        return ide.log.read_text().splitlines()

    before = len(lines())
    for _ in range(3):
        ide.request("GET", "/healthz")
    deadline = time.monotonic() + 5
    while len(lines()) < before + 3:
        assert time.monotonic() < deadline, ide.log.read_text()
        time.sleep(0.05)
    time.sleep(0.2)  # nothing more should arrive
    new = lines()[before:]
    assert len(new) == 3
    assert all('"GET /healthz HTTP/1.1" 200' in line for line in new)


def test_sigterm_stops_it_at_once(tmp_path):
    # As PID 1 in a container SIGTERM is ignored unless handled; `docker stop` must not wait 10 s.
    standin = _start(tmp_path, tmp_path / "ide.log")
    try:
        ws = websocket.create_connection(f"ws://127.0.0.1:{standin.port}/__ws", timeout=10)
        started = time.monotonic()
        standin.proc.terminate()
        assert standin.proc.wait(5) == 0
        assert time.monotonic() - started < 3
        ws.close()
    finally:
        _stop(standin)
