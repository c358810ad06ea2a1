"""`medforge sessions port-forward`: a local HTTP and WebSocket proxy to a port inside a session.

The session's port is reached the way a browser reaches the IDE: through the platform's edge
(Caddy, forward auth) on the session host `s-<slug>.<surface>.<base>`, with the personal token
as `Authorization: Bearer` (the edge removes it before the container), at the path where the
IDE proxies ports — code-server's `/proxy/<port>/`, which strips that prefix, so the app inside
sees `/` (configurable: `--path-template`).

How it is built, and why:
- The local side parses HTTP/1.1 with h11 (sans-IO, the parser httpcore and so httpx already
  use): correct framing (Content-Length, chunked, keep-alive, HEAD, 100-continue) without a web
  framework, and full control of what is accepted.
- Plain HTTP goes upstream through an httpx.AsyncClient: pooled keep-alive connections to the
  edge, TLS, and bodies streamed both ways (raw bytes: the browser and the app negotiate the
  content encoding between themselves).
- A WebSocket (any `Upgrade`) is relayed as bytes after the handshake: the request head goes to
  the edge with the token added, then both directions are copied as they are. Subprotocols,
  extensions (permessage-deflate), pings and close codes stay an affair between the browser and
  the app, and no frame is decoded and re-encoded on the way, which a WebSocket library on
  each side would do (and which would drop or renegotiate extensions).

The forward carries the user's token, so it refuses what is not its own user's browser:
requests whose Host is not the local address (DNS rebinding), and requests from other sites'
pages (a foreign `Origin`, or `Sec-Fetch-Site: cross-site` outside a top-level navigation).
"""
from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import ssl
import sys
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import h11
import httpx

from .client import async_transport, is_loopback_name
from .errors import UsageError

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailer", "trailers", "transfer-encoding", "upgrade", "proxy-connection"}
# Never forwarded from the local client: the forward supplies the edge's credentials itself.
DROP_UPSTREAM = HOP_BY_HOP | {"host", "authorization", "expect", "content-length"}
DROP_DOWNSTREAM = HOP_BY_HOP
READ_SIZE = 64 * 1024


def parse_ports(spec: str) -> tuple[int, int]:
    """`6006:6006`, `9000:6006`, `6006` (both sides), `0:6006` (any free local port)."""
    text = (spec or "").strip()
    local_text, sep, remote_text = text.partition(":")
    if not sep:
        remote_text = local_text
    try:
        local, remote = int(local_text), int(remote_text)
    except ValueError:
        raise UsageError(f"Ports {spec!r}: use LOCAL:REMOTE, e.g. 6006:6006.") from None
    if not 0 <= local <= 65535 or not 1 <= remote <= 65535:
        raise UsageError(f"Ports {spec!r}: LOCAL is 0..65535 (0: any free port), REMOTE 1..65535.")
    return local, remote


def remote_prefix(template: str, port: int) -> str:
    """The path on the session host where the port is served, with a trailing slash."""
    path = (template or "/").replace("{port}", str(port))
    if not path.startswith("/"):
        path = "/" + path
    if not path.endswith("/"):
        path += "/"
    return path


def _header(headers, name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _connection_tokens(headers) -> set[str]:
    tokens: set[str] = set()
    for key, value in headers:
        if key.lower() == b"connection":
            tokens |= {t.strip().lower() for t in value.decode("latin-1").split(",") if t.strip()}
    return tokens


class Forwarder:
    """One listening socket forwarding to one port of one session."""

    def __init__(self, *, remote_base: str, template: str, remote_port: int, token: str,
                 bind: str = "127.0.0.1", local_port: int = 0,
                 transport: httpx.AsyncBaseTransport | None = None, verbose: bool = False,
                 log=None) -> None:
        parts = urlsplit(remote_base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"Not a session URL: {remote_base!r}.")
        self.scheme = parts.scheme
        self.remote_host = parts.hostname
        self.remote_port = parts.port or (443 if parts.scheme == "https" else 80)
        self.remote_netloc = parts.netloc.rsplit("@", 1)[-1]
        self.remote_origin = f"{parts.scheme}://{self.remote_netloc}"
        self.prefix = remote_prefix(template, remote_port)
        self.token = token
        self.bind = bind
        self.local_port = local_port
        self.verbose = verbose
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.client = httpx.AsyncClient(
            transport=async_transport(transport), follow_redirects=False,
            timeout=httpx.Timeout(connect=15.0, read=None, write=60.0, pool=None))
        self.server: asyncio.Server | None = None
        self.port = local_port
        self._refused_logged: set[int] = set()
        self._tasks: set[asyncio.Task] = set()

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> int:
        try:
            self.server = await asyncio.start_server(self._handle, self.bind, self.local_port)
        except OSError as exc:
            raise UsageError(f"Cannot listen on {self.bind}:{self.local_port}: {exc.strerror or exc}.") from None
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            for task in list(self._tasks):
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 5)
        await self.client.aclose()

    @property
    def local_origin(self) -> str:
        host = "127.0.0.1" if self.bind in ("0.0.0.0", "::", "") else self.bind
        return f"http://{host}:{self.port}"

    def _allowed_hosts(self) -> set[str] | None:
        if self.bind in ("0.0.0.0", "::", ""):
            return None  # any name may point here; the Origin check still applies
        names = {"localhost", "127.0.0.1", "[::1]", self.bind if ":" not in self.bind else f"[{self.bind}]"}
        hosts = {f"{n}:{self.port}" for n in names}
        if self.port == 80:
            hosts |= names
        return {h.lower() for h in hosts}

    # --- one connection ---------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                event = await self._next(conn, reader)
                if not isinstance(event, h11.Request):
                    break
                refusal = self._refusal(event)
                if refusal is not None:
                    await self._send_simple(conn, writer, *refusal, close=True)
                    break
                if "upgrade" in _connection_tokens(event.headers) and _header(event.headers, b"upgrade"):
                    await self._tunnel(conn, event, reader, writer)
                    return
                await self._forward(conn, event, reader, writer)
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    break
                conn.start_next_cycle()
        except h11.RemoteProtocolError as exc:
            with contextlib.suppress(Exception):
                await self._send_simple(conn, writer, exc.error_status_hint, f"Bad request: {exc}", close=True)
        except (ConnectionError, asyncio.IncompleteReadError, h11.LocalProtocolError):
            pass
        finally:
            if task is not None:
                self._tasks.discard(task)
            with contextlib.suppress(Exception):
                writer.close()
                await writer.wait_closed()

    async def _next(self, conn: h11.Connection, reader: asyncio.StreamReader):
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(READ_SIZE))
                continue
            return event

    def _refusal(self, request: h11.Request) -> tuple[int, str] | None:
        host = (_header(request.headers, b"host") or "").lower()
        allowed = self._allowed_hosts()
        if allowed is not None and host not in allowed:
            return 403, (f"medforge port-forward: Host {host!r} refused; open "
                         f"{self.local_origin}/ (this guards the token against DNS rebinding).")
        origin = _header(request.headers, b"origin")
        if origin is not None and origin.lower() != f"http://{host}":
            return 403, f"medforge port-forward: requests from {origin} are refused (not this forward's pages)."
        site = (_header(request.headers, b"sec-fetch-site") or "").lower()
        mode = (_header(request.headers, b"sec-fetch-mode") or "").lower()
        if site == "cross-site" and mode != "navigate":
            return 403, "medforge port-forward: cross-site requests are refused."
        if not request.target.startswith(b"/"):
            return 400, "medforge port-forward: only origin-form request targets are served."
        return None

    def _remote_target(self, target: str) -> str:
        return self.prefix[:-1] + target if self.prefix != "/" else target

    def _upstream_headers(self, headers, *, upgrade: bool = False) -> list[tuple[str, str]]:
        named = _connection_tokens(headers)
        out: list[tuple[str, str]] = [("Host", self.remote_netloc)]
        local = self.local_origin
        host = (_header(headers, b"host") or "").lower()
        origins = {local.lower(), f"http://{host}"}
        for key, value in headers:
            name = key.decode("latin-1")
            low = name.lower()
            text = value.decode("latin-1")
            if low in DROP_UPSTREAM or low in named:
                if upgrade and low == "upgrade":
                    out.append((name, text))
                continue
            if low == "origin" and text.lower() in origins:
                text = self.remote_origin
            elif low == "referer":
                for candidate in origins:
                    if text.lower().startswith(candidate + "/"):
                        text = self.remote_origin + self._remote_target(text[len(candidate):])
                        break
            out.append((name, text))
        if upgrade:
            out.append(("Connection", "Upgrade"))
        out.append(("Authorization", f"Bearer {self.token}"))
        return out

    def _downstream_headers(self, response: httpx.Response) -> list[tuple[str, str]]:
        named = {t.strip().lower() for t in response.headers.get("connection", "").split(",") if t.strip()}
        out: list[tuple[str, str]] = []
        for name, value in response.headers.multi_items():
            low = name.lower()
            if low in DROP_DOWNSTREAM or low in named:
                continue
            if low == "location":
                value = self._local_location(value)
            elif low == "set-cookie":
                value = self._local_cookie(value)
            out.append((name, value))
        return out

    def _local_path(self, path: str) -> str | None:
        """A path on the session host → the local path it is served at (None: outside)."""
        base = self.prefix[:-1]
        if not path.startswith(base):
            return None
        rest = path[len(base):]
        if rest and rest[0] not in "/?#":
            return None  # /proxy/60061 is not under /proxy/6006/
        return rest if rest.startswith("/") else "/" + rest

    def _local_location(self, value: str) -> str:
        if value.startswith(self.remote_origin + "/") or value == self.remote_origin:
            local = self._local_path(value[len(self.remote_origin):] or "/")
            return value if local is None else self.local_origin + local
        if self.prefix != "/" and value.startswith("/"):
            local = self._local_path(value)
            return value if local is None else local
        return value

    def _local_cookie(self, value: str) -> str:
        parts = value.split(";")
        kept = [parts[0]]
        for attr in parts[1:]:
            name = attr.strip().split("=", 1)[0].lower()
            if name == "domain":
                continue  # the cookie now belongs to the local address
            if name == "path" and self.prefix != "/":
                path = attr.split("=", 1)[1].strip() if "=" in attr else "/"
                local = self._local_path(path)
                if local is not None:
                    attr = " Path=" + local
            kept.append(attr)
        return ";".join(kept)

    async def _send_simple(self, conn: h11.Connection, writer: asyncio.StreamWriter, status: int,
                           text: str, *, close: bool = False) -> None:
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        body = (text + "\n").encode()
        headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))),
                   ("Cache-Control", "no-store")]
        if close:
            headers.append(("Connection", "close"))
        writer.write(conn.send(h11.Response(status_code=status, headers=headers)))
        writer.write(conn.send(h11.Data(data=body)))
        writer.write(conn.send(h11.EndOfMessage()))
        await writer.drain()

    async def _body(self, conn: h11.Connection, reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
        while True:
            event = await self._next(conn, reader)
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return
            else:
                raise ConnectionError("the client went away mid-request")

    async def _forward(self, conn: h11.Connection, request: h11.Request,
                       reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        method = request.method.decode("ascii")
        target = request.target.decode("latin-1")
        headers = self._upstream_headers(request.headers)
        length = _header(request.headers, b"content-length")
        chunked = "chunked" in (_header(request.headers, b"transfer-encoding") or "").lower()
        body = None
        if chunked or (length is not None and length.strip() not in ("", "0")):
            if conn.they_are_waiting_for_100_continue:
                writer.write(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
                await writer.drain()
            if length is not None and not chunked:
                headers.append(("Content-Length", length.strip()))
            body = self._body(conn, reader)
        else:
            if length is not None:
                headers.append(("Content-Length", "0"))
            event = await self._next(conn, reader)
            if not isinstance(event, h11.EndOfMessage):
                raise ConnectionError("unexpected request body")
        upstream = httpx.Request(method, self.remote_origin + self._remote_target(target),
                                 headers=headers, content=body)
        try:
            response = await self.client.send(upstream, stream=True)
        except httpx.HTTPError as exc:
            self.log(f"port-forward: {method} {target}: cannot reach the session: {exc or type(exc).__name__}")
            await self._send_simple(conn, writer, 502, f"medforge port-forward: cannot reach the session: {exc}",
                                    close=True)
            return
        try:
            self._log_answer(method, target, response)
            writer.write(conn.send(h11.Response(
                status_code=response.status_code, headers=self._downstream_headers(response),
                reason=(response.reason_phrase or "").encode("latin-1", "replace"))))
            async for chunk in response.aiter_raw():
                if chunk:
                    writer.write(conn.send(h11.Data(data=chunk)))
                    await writer.drain()
            writer.write(conn.send(h11.EndOfMessage()))
            await writer.drain()
        finally:
            await response.aclose()

    def _log_answer(self, method: str, target: str, response: httpx.Response) -> None:
        status = response.status_code
        if self.verbose:
            self.log(f"port-forward: {method} {target} → {status}")
        elif status in (401, 403, 404, 502) and status not in self._refused_logged \
                and response.headers.get("content-type", "").startswith("application/problem+json"):
            self._refused_logged.add(status)
            self.log(f"port-forward: the platform answered {status} for {method} {target} "
                     f"(is the session still running and yours? `medforge sessions status`)")

    # --- WebSockets (and any other upgrade) --------------------------------------------------

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        address = "127.0.0.1" if is_loopback_name(self.remote_host) else self.remote_host
        context = None
        if self.scheme == "https":
            context = ssl.create_default_context()
            with contextlib.suppress(ImportError):
                import certifi

                context.load_verify_locations(certifi.where())
        return await asyncio.wait_for(asyncio.open_connection(
            address, self.remote_port, ssl=context,
            server_hostname=self.remote_host if context else None), 15)

    async def _tunnel(self, conn: h11.Connection, request: h11.Request,
                      reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:  # the handshake has no body: EndOfMessage, then h11 pauses for the switch
            event = await self._next(conn, reader)
            if event is h11.PAUSED:
                break
            if not isinstance(event, (h11.Data, h11.EndOfMessage)):
                return
        trailing, _closed = conn.trailing_data
        method = request.method.decode("ascii")
        target = request.target.decode("latin-1")
        try:
            up_reader, up_writer = await self._open_upstream()
        except (TimeoutError, OSError) as exc:
            self.log(f"port-forward: {method} {target} (upgrade): cannot reach the session: {exc}")
            await self._send_simple(conn, writer, 502, f"medforge port-forward: cannot reach the session: {exc}",
                                    close=True)
            return
        head = f"{method} {self._remote_target(target)} HTTP/1.1\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in
                        self._upstream_headers(request.headers, upgrade=True)) + "\r\n"
        if self.verbose:
            self.log(f"port-forward: {method} {target} → upgrade ({_header(request.headers, b'upgrade')})")
        up_writer.write(head.encode("latin-1") + trailing)
        await up_writer.drain()

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while True:
                    data = await src.read(READ_SIZE)
                    if not data:
                        break
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    if dst.can_write_eof():
                        dst.write_eof()
                    else:
                        dst.close()

        up = asyncio.ensure_future(pipe(reader, up_writer))
        down = asyncio.ensure_future(pipe(up_reader, writer))
        try:
            done, pending = await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
            if pending:
                await asyncio.wait(pending, timeout=10)
        finally:
            for task in (up, down):
                task.cancel()
            with contextlib.suppress(Exception):
                up_writer.close()


def run_forward(*, remote_base: str, template: str, remote_port: int, local_port: int, bind: str,
                token: str, transport: httpx.AsyncBaseTransport | None = None, verbose: bool = False,
                label: str = "") -> None:
    """Serve until Ctrl-C or SIGTERM."""

    async def serve() -> None:
        forwarder = Forwarder(remote_base=remote_base, template=template, remote_port=remote_port,
                              token=token, bind=bind, local_port=local_port, transport=transport,
                              verbose=verbose)
        await forwarder.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        shown = re.sub(r"/$", "", remote_base)
        print(f"Forwarding {forwarder.local_origin}/ -> port {remote_port} of session {label} "
              f"({shown}{forwarder.prefix})", flush=True)
        print("Press Ctrl-C to stop.", file=sys.stderr, flush=True)
        try:
            await stop.wait()
        finally:
            await forwarder.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
