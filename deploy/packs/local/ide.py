#!/usr/bin/env python3
"""MedForge stand-in IDE: a stdlib-only HTTP + WebSocket server that takes code-server's place in
the local pack, so the platform's session path (container, proxy, forward auth, workspace) can be
run and tested without a registry, a GPU or a real IDE.

Routes
  GET  /                  HTML page "MedForge stand-in IDE" (session id, workspace, files)
  GET  /healthz           200 "ok"
  GET  /__headers         JSON {"method", "path", "http_version", "headers": {name: value | [values]}}
                          with every request header exactly as received (names lower-cased)
  GET  /__info            JSON: session env, uid/gid, workspace, hostname
  GET  /__ws              WebSocket echo (RFC 6455: text, binary, fragments, ping/pong, close)
  POST /__write?name=x    write the request body to <workspace>/x (201, JSON with size and sha256)
  GET  /__read?name=x     the bytes of <workspace>/x

Environment: IDE_HOST (0.0.0.0), IDE_PORT (8080), MEDFORGE_WORKSPACE (/workspace),
IDE_MAX_BODY_BYTES (64 MiB), MEDFORGE_SESSION_ID and friends (shown, never required).
One log line per request goes to stdout.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import signal
import socket
import struct
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

TITLE = "MedForge stand-in IDE"
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_BODY = int(os.environ.get("IDE_MAX_BODY_BYTES", str(64 * 1024 * 1024)))
MAX_WS_MESSAGE = int(os.environ.get("IDE_MAX_WS_MESSAGE_BYTES", str(16 * 1024 * 1024)))
SESSION_ENV = (
    "MEDFORGE_SESSION_ID",
    "MEDFORGE_USER_ID",
    "MEDFORGE_EXPOSURE",
    "MEDFORGE_GPU_ID",
    "NVIDIA_VISIBLE_DEVICES",
    "CUDA_VISIBLE_DEVICES",
)

# WebSocket opcodes and close codes (RFC 6455 §5.2, §7.4.1).
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
CLOSE_NORMAL, CLOSE_PROTOCOL_ERROR, CLOSE_INVALID_DATA, CLOSE_TOO_BIG = 1000, 1002, 1007, 1009


def workspace_dir() -> str:
    return os.environ.get("MEDFORGE_WORKSPACE", "/workspace")


class BodyTooLarge(Exception):
    pass


class BadBody(Exception):
    """A request body whose framing cannot be read; the connection cannot be reused."""


class WebSocketClosed(Exception):
    """The peer went away or the close handshake finished."""


class WebSocketError(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _xor_mask(payload: bytes, mask: bytes) -> bytes:
    # One big-integer XOR instead of a per-byte Python loop: fast enough for megabyte frames.
    n = len(payload)
    if n == 0:
        return payload
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


class Handler(BaseHTTPRequestHandler):
    server_version = "MedForgeStandInIDE/1.0"
    protocol_version = "HTTP/1.1"  # keep-alive: every response carries Content-Length
    disable_nagle_algorithm = True  # headers and body go out as two writes; no 40 ms stalls
    timeout = 120  # an idle keep-alive connection is closed after this

    # --- plumbing ---------------------------------------------------------------------------

    def version_string(self) -> str:
        return self.server_version  # no Python version in the Server header

    def log_message(self, format: str, *args) -> None:
        line = f"{self.address_string()} - [{self.log_date_time_string()}] {format % args}\n"
        try:
            sys.stdout.write(line)
            sys.stdout.flush()
        except (OSError, ValueError):
            pass

    def _send(
        self,
        status: int,
        body: bytes = b"",
        content_type: str = "text/plain; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-MedForge-IDE", "stand-in")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _send_json(self, status: int, obj: object) -> None:
        body = json.dumps(obj, indent=2, sort_keys=False).encode() + b"\n"
        self._send(status, body, "application/json")

    def _read_body(self, limit: int = MAX_BODY) -> bytes:
        """The request body (Content-Length or chunked); raises BodyTooLarge past `limit`."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks, total = [], 0
            while True:
                size_line = self.rfile.readline(1024)
                if not size_line:
                    raise ConnectionError("connection closed inside a chunked body")
                try:
                    size = int(size_line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise BadBody("bad chunk size") from None
                if size == 0:
                    while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                total += size
                if total > limit:
                    raise BodyTooLarge()
                chunks.append(self._read_exact(size))
                self.rfile.readline(8)  # CRLF after each chunk
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            n = int(length)
        except ValueError:
            raise BadBody("bad Content-Length") from None
        if n < 0:
            raise BadBody("bad Content-Length")
        if n > limit:
            raise BodyTooLarge()
        return self._read_exact(n)

    def _read_exact(self, n: int) -> bytes:
        data = self.rfile.read(n)
        if len(data) != n:
            raise ConnectionError("connection closed mid-body")
        return data

    def _query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.path).query, keep_blank_values=True)

    def _route(self) -> str:
        return urlsplit(self.path).path or "/"

    # --- dispatch ---------------------------------------------------------------------------

    def _body_or_error(self) -> bytes | None:
        """Read the body so the connection stays usable; on failure answer and return None."""
        try:
            return self._read_body()
        except BodyTooLarge:
            self.close_connection = True
            self._send(413, b"body too large\n")
        except BadBody as exc:
            self.close_connection = True
            self._send(400, str(exc).encode() + b"\n")
        return None

    def do_GET(self) -> None:
        route = self._route()
        if route != "/__ws" and self._body_or_error() is None:
            return  # a GET with a body is odd but legal; it must not desync keep-alive
        if route == "/":
            self._page()
        elif route == "/healthz":
            self._send(200, b"ok")
        elif route == "/__headers":
            self._headers_echo()
        elif route == "/__info":
            self._send_json(200, self._info())
        elif route == "/__ws":
            self._websocket()
        elif route == "/__read":
            self._read_file()
        else:
            self._send(404, b"not found\n")

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_POST(self) -> None:
        body = self._body_or_error()
        if body is None:
            return
        route = self._route()
        if route == "/__write":
            self._write_file(body)
        elif route == "/__headers":
            self._headers_echo(len(body))
        else:
            self._send(404, b"not found\n")

    def _other(self) -> None:
        if self._body_or_error() is None:
            return
        self._send(405, b"method not allowed\n", headers={"Allow": "GET, HEAD, POST"})

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _other

    # --- routes -----------------------------------------------------------------------------

    def _info(self) -> dict:
        return {
            "session_id": os.environ.get("MEDFORGE_SESSION_ID"),
            "env": {name: os.environ.get(name) for name in SESSION_ENV},
            "uid": os.getuid(),
            "gid": os.getgid(),
            "workspace": workspace_dir(),
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
        }

    def _headers_echo(self, body_bytes: int | None = None) -> None:
        headers: dict[str, object] = {}
        for name, value in self.headers.items():  # order and repeats as received
            key = name.lower()
            if key not in headers:
                headers[key] = value
            elif isinstance(headers[key], list):
                headers[key].append(value)
            else:
                headers[key] = [headers[key], value]
        out = {
            "method": self.command,
            "path": self.path,
            "http_version": self.request_version,
            "headers": headers,
        }
        if body_bytes is not None:
            out["body_bytes"] = body_bytes
        self._send_json(200, out)

    def _page(self) -> None:
        ws = workspace_dir()
        session_id = os.environ.get("MEDFORGE_SESSION_ID", "")
        try:
            entries = sorted(os.listdir(ws))[:200]
            listing = "".join(f"<li><code>{html.escape(name)}</code></li>" for name in entries)
        except OSError as exc:
            listing = f"<li><em>unreadable: {html.escape(exc.strerror or str(exc))}</em></li>"
        listing = listing or "<li><em>empty</em></li>"
        rows = "".join(
            f'<tr><th>{name}</th><td id="env-{name.lower().replace("_", "-")}">'
            f"{html.escape(os.environ.get(name, ''))}</td></tr>"
            for name in SESSION_ENV
        )
        body = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{TITLE}</title>
<style>
 body {{ font: 15px/1.5 system-ui, sans-serif; margin: 2rem auto; max-width: 48rem; padding: 0 1rem; }}
 th {{ text-align: left; padding-right: 1rem; font-weight: 600; }}
 code {{ background: #f3f3f3; padding: 0 .25rem; }}
</style>
</head>
<body>
<h1>{TITLE}</h1>
<p>This container stands in for code-server in local runs and tests.</p>
<dl>
 <dt>Session</dt><dd id="session-id">{html.escape(session_id) or "<em>unset</em>"}</dd>
 <dt>Workspace</dt><dd id="workspace"><code>{html.escape(ws)}</code></dd>
 <dt>WebSocket</dt><dd id="ws-status">not tried (needs JavaScript)</dd>
</dl>
<table>{rows}</table>
<h2>Workspace files</h2>
<ul id="files">{listing}</ul>
<script>
(function () {{
  var out = document.getElementById("ws-status");
  try {{
    var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/__ws";
    var ws = new WebSocket(url), probe = "medforge-probe-" + Date.now();
    out.textContent = "connecting";
    ws.onopen = function () {{ ws.send(probe); }};
    ws.onmessage = function (ev) {{
      out.textContent = ev.data === probe ? "echo ok" : "unexpected echo";
      ws.close(1000);
    }};
    ws.onerror = function () {{ out.textContent = "error"; }};
  }} catch (e) {{ out.textContent = "error: " + e; }}
}})();
</script>
</body>
</html>
"""
        self._send(200, body.encode(), "text/html; charset=utf-8")

    def _workspace_target(self) -> str | None:
        names = self._query().get("name", [])
        if len(names) != 1:
            return None
        name = names[0]
        # One plain path component: no directories, no way out of the workspace.
        if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
            return None
        return os.path.join(workspace_dir(), name)

    def _write_file(self, body: bytes) -> None:
        target = self._workspace_target()
        if target is None:
            self._send(400, b"name must be one plain file name\n")
            return
        tmp = f"{target}.tmp-{os.getpid()}-{time.monotonic_ns()}"
        try:
            with open(tmp, "wb") as fh:
                fh.write(body)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except OSError as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            self._send_json(500, {"error": exc.strerror or str(exc), "path": target})
            return
        self._send_json(
            201,
            {
                "name": os.path.basename(target),
                "path": target,
                "bytes": len(body),
                "sha256": hashlib.sha256(body).hexdigest(),
            },
        )

    def _read_file(self) -> None:
        target = self._workspace_target()
        if target is None:
            self._send(400, b"name must be one plain file name\n")
            return
        try:
            with open(target, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            self._send(404, b"no such file\n")
            return
        except OSError as exc:
            self._send(500, (exc.strerror or str(exc)).encode() + b"\n")
            return
        self._send(200, data, "application/octet-stream")

    # --- WebSocket (RFC 6455) ---------------------------------------------------------------

    def _websocket(self) -> None:
        upgrade = self.headers.get("Upgrade", "").lower()
        connection = {t.strip().lower() for t in self.headers.get("Connection", "").split(",")}
        key = self.headers.get("Sec-WebSocket-Key", "").strip()
        version = self.headers.get("Sec-WebSocket-Version", "").strip()
        if self.command != "GET" or upgrade != "websocket" or "upgrade" not in connection:
            self._send(426, b"websocket upgrade required\n", headers={"Upgrade": "websocket"})
            return
        try:
            valid_key = len(base64.b64decode(key, validate=True)) == 16
        except ValueError:
            valid_key = False
        if not valid_key:
            self._send(400, b"bad Sec-WebSocket-Key\n")
            return
        if version != "13":
            self._send(426, b"unsupported websocket version\n", headers={"Sec-WebSocket-Version": "13"})
            return
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True  # after the WebSocket the TCP connection is done
        self.connection.settimeout(None)  # an idle editor tab may sit for hours
        try:
            self._ws_echo_loop()
        except WebSocketError as exc:
            self._ws_close(exc.code, exc.reason)
        except (WebSocketClosed, ConnectionError, OSError):
            pass

    def _ws_read(self, n: int) -> bytes:
        data = self.rfile.read(n) if n else b""
        if len(data) != n:
            raise WebSocketClosed()
        return data

    def _ws_frame(self) -> tuple[bool, int, bytes]:
        b1, b2 = self._ws_read(2)
        fin, rsv, opcode = bool(b1 & 0x80), b1 & 0x70, b1 & 0x0F
        masked, length = bool(b2 & 0x80), b2 & 0x7F
        if rsv:
            raise WebSocketError(CLOSE_PROTOCOL_ERROR, "reserved bits set")
        if not masked:
            raise WebSocketError(CLOSE_PROTOCOL_ERROR, "client frames must be masked")
        if opcode & 0x8 and (not fin or length > 125):
            raise WebSocketError(CLOSE_PROTOCOL_ERROR, "bad control frame")
        if length == 126:
            (length,) = struct.unpack("!H", self._ws_read(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._ws_read(8))
        if length > MAX_WS_MESSAGE:
            raise WebSocketError(CLOSE_TOO_BIG, "message too big")
        mask = self._ws_read(4)
        return fin, opcode, _xor_mask(self._ws_read(length), mask)

    def _ws_send(self, opcode: int, payload: bytes = b"") -> None:
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x80 | opcode, n)
        elif n < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 126, n)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 127, n)
        self.wfile.write(header + payload)

    def _ws_close(self, code: int, reason: str = "") -> None:
        try:
            self._ws_send(OP_CLOSE, struct.pack("!H", code) + reason.encode()[:123])
        except OSError:
            pass

    def _ws_echo_loop(self) -> None:
        message_opcode: int | None = None
        parts: list[bytes] = []
        size = 0
        while True:
            fin, opcode, payload = self._ws_frame()
            if opcode == OP_PING:
                self._ws_send(OP_PONG, payload)
                continue
            if opcode == OP_PONG:
                continue
            if opcode == OP_CLOSE:
                self._ws_answer_close(payload)
                raise WebSocketClosed()
            if opcode in (OP_TEXT, OP_BINARY):
                if message_opcode is not None:
                    raise WebSocketError(CLOSE_PROTOCOL_ERROR, "expected a continuation frame")
                message_opcode, parts, size = opcode, [], 0
            elif opcode == OP_CONT:
                if message_opcode is None:
                    raise WebSocketError(CLOSE_PROTOCOL_ERROR, "continuation without a message")
            else:
                raise WebSocketError(CLOSE_PROTOCOL_ERROR, f"unknown opcode {opcode}")
            size += len(payload)
            if size > MAX_WS_MESSAGE:
                raise WebSocketError(CLOSE_TOO_BIG, "message too big")
            parts.append(payload)
            if not fin:
                continue
            message = b"".join(parts)
            if message_opcode == OP_TEXT:
                try:
                    message.decode("utf-8")
                except UnicodeDecodeError:
                    raise WebSocketError(CLOSE_INVALID_DATA, "text is not UTF-8") from None
            self._ws_send(message_opcode, message)
            message_opcode, parts, size = None, [], 0

    def _ws_answer_close(self, payload: bytes) -> None:
        if not payload:
            self._ws_send(OP_CLOSE)
            return
        if len(payload) == 1:
            self._ws_close(CLOSE_PROTOCOL_ERROR, "bad close payload")
            return
        (code,) = struct.unpack("!H", payload[:2])
        valid_code = 1000 <= code <= 1014 and code not in (1004, 1005, 1006) or 3000 <= code <= 4999
        try:
            payload[2:].decode("utf-8")
        except UnicodeDecodeError:
            valid_code = False
        if valid_code:
            self._ws_send(OP_CLOSE, struct.pack("!H", code))  # echo the status code (RFC 6455 §5.5.1)
        else:
            self._ws_close(CLOSE_PROTOCOL_ERROR, "bad close code")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # benchmarks open many connections at once


def main() -> None:
    host = os.environ.get("IDE_HOST", "0.0.0.0")
    port = int(os.environ.get("IDE_PORT", "8080"))
    server = Server((host, port), Handler)

    def stop(signum, frame):  # as PID 1 in a container SIGTERM is ignored unless handled
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    session = os.environ.get("MEDFORGE_SESSION_ID", "-")
    print(
        f"{TITLE} listening on {host}:{server.server_address[1]} (workspace {workspace_dir()}, session {session})",
        flush=True,
    )
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
