"""The API client: one httpx.Client per command, envelope unwrapping, cursor pagination and
problem+json errors turned into `ApiError`."""
from __future__ import annotations

import contextlib
import json
import platform
from collections.abc import Iterator
from typing import Any

import httpx

from . import __version__
from .api_fields import get
from .errors import ApiError, NetworkError, ServerError

API_PREFIX = "/api/v2"
USER_AGENT = f"medforge-cli/{__version__} (python {platform.python_version()}; {platform.system().lower()})"
PROBLEM_TYPES = ("application/problem+json", "application/json")
MAX_PAGE = 500


def is_loopback_name(host: str | None) -> bool:
    """`localhost` and `*.localhost` (RFC 6761 §6.3): always the loopback address. Browsers
    resolve them so; many system resolvers do not, so the CLI does it itself."""
    host = (host or "").rstrip(".").lower()
    return host == "localhost" or host.endswith(".localhost")


def _loopback(request: httpx.Request) -> None:
    host = request.url.host
    if is_loopback_name(host):
        # The Host header was fixed when the request was built; only the address changes.
        request.url = request.url.copy_with(host="127.0.0.1")
        if request.url.scheme == "https":
            request.extensions = {**request.extensions, "sni_hostname": host}


class LoopbackTransport(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        _loopback(request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


class AsyncLoopbackTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        _loopback(request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def sync_transport(transport: httpx.BaseTransport | None) -> httpx.BaseTransport:
    return transport if transport is not None else LoopbackTransport(httpx.HTTPTransport())


def async_transport(transport: httpx.AsyncBaseTransport | None) -> httpx.AsyncBaseTransport:
    return transport if transport is not None else AsyncLoopbackTransport(httpx.AsyncHTTPTransport())


def error_from_response(response: httpx.Response, body: bytes | None = None) -> ApiError:
    """An ApiError from an error answer: the problem document when there is one, else the
    status and the first line of whatever answered (an edge page, a proxy error)."""
    raw = response.content if body is None else body
    ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
    request = response.request
    common = dict(status=response.status_code, request_id=response.headers.get("x-request-id"),
                  retry_after=response.headers.get("retry-after"),
                  method=request.method if request else "", url=str(request.url) if request else "")
    doc = None
    if ctype in PROBLEM_TYPES or ctype.endswith("+json"):
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            doc = None
    if isinstance(doc, dict) and ("code" in doc or "detail" in doc or "title" in doc):
        errors = get("problem", doc, "errors", []) if isinstance(doc.get("errors"), list) else []
        extra = {k: v for k, v in doc.items()
                 if k not in ("type", "title", "status", "detail", "code", "request_id", "errors",
                              "instance")}
        return ApiError(code=get("problem", doc, "code"), detail=str(get("problem", doc, "detail", "")),
                        title=str(get("problem", doc, "title", "")),
                        errors=[e for e in errors if isinstance(e, dict)], extra=extra,
                        **{**common, "request_id": get("problem", doc, "request_id") or common["request_id"]})
    text = raw.decode("utf-8", "replace").strip()
    if ctype == "text/html":
        text = "an HTML page (is the URL the MedForge site?)"
    first = text.splitlines()[0][:200] if text else (response.reason_phrase or "")
    return ApiError(detail=first, **common)


class Api:
    """The MedForge API at `base_url` (the site root), with an optional personal token."""

    def __init__(self, base_url: str, token: str | None = None, *,
                 transport: httpx.BaseTransport | None = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.http = httpx.Client(base_url=self.base_url, headers=headers,
                                 transport=sync_transport(transport),
                                 timeout=httpx.Timeout(timeout, connect=10.0),
                                 follow_redirects=False)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @staticmethod
    def url_for(path: str) -> str:
        """`/me` → `/api/v2/me`; a path already under /api/ (links the API returns) is kept."""
        return path if path.startswith("/api/") else API_PREFIX + path

    # --- plain requests ---------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> dict:
        """The decoded envelope of a 2xx answer; raises ApiError otherwise."""
        try:
            response = self.http.request(method, self.url_for(path), **kwargs)
        except httpx.TransportError as exc:
            raise self._network_error(exc) from None
        return self._decode(response)

    def data(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).get("data")

    def _decode(self, response: httpx.Response) -> dict:
        if not response.is_success:
            raise error_from_response(response)
        if response.status_code == 204 or not response.content:
            return {"data": None, "meta": {}}
        try:
            body = response.json()
        except ValueError:
            raise ServerError(f"{response.request.method} {response.request.url} answered "
                              f"{response.status_code} with a body that is not JSON "
                              f"(is {self.base_url} the MedForge site?)") from None
        if not isinstance(body, dict) or "data" not in body:
            raise ServerError(f"{response.request.url} answered without the API envelope "
                              f"(is {self.base_url} the MedForge site?)")
        return body

    def _network_error(self, exc: httpx.TransportError) -> NetworkError:
        reason = str(exc) or type(exc).__name__
        if isinstance(exc, httpx.TimeoutException):
            reason = f"timed out ({type(exc).__name__})"
        return NetworkError(f"Cannot reach {self.base_url}: {reason}")

    # --- lists ------------------------------------------------------------------------------

    def paginate(self, path: str, params: dict | None = None, *, limit: int | None = None,
                 page_size: int | None = None) -> Iterator[Any]:
        """Items of a cursor-paginated list, following `meta.next_cursor`; at most `limit`."""
        params = dict(params or {})
        size = page_size or (min(limit, MAX_PAGE) if limit else 100)
        seen = 0
        cursor = None
        while True:
            query = {**params, "limit": size}
            if cursor:
                query["cursor"] = cursor
            body = self.request("GET", path, params=query)
            rows = body.get("data") or []
            for row in rows:
                yield row
                seen += 1
                if limit is not None and seen >= limit:
                    return
            meta = body.get("meta") or {}
            cursor = get("meta", meta, "next_cursor")
            if not cursor or not get("meta", meta, "has_more", True) or not rows:
                return

    # --- streams ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def stream(self, method: str, path: str, *, timeout: httpx.Timeout | None = None,
               **kwargs: Any) -> Iterator[httpx.Response]:
        """A streamed 2xx response (downloads, server-sent events); raises ApiError for an
        error answer after reading its (small) body."""
        try:
            with self.http.stream(method, self.url_for(path), timeout=timeout or self.http.timeout,
                                  **kwargs) as response:
                if not response.is_success:
                    body = response.read()
                    raise error_from_response(response, body)
                yield response
        except httpx.TransportError as exc:
            raise self._network_error(exc) from None
