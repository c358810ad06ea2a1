"""Server-sent events (the WHATWG HTML "event stream" format) and the session event stream.

The platform serves a session's lifecycle at `…/sessions/{id}/events/stream`: one
`session_event` per lifecycle event (its SSE id is the event id, so `Last-Event-ID` resumes),
keep-alive comments, and `end` once the session is terminal. A connection lasts a bounded time
(SESSION_EVENTS_STREAM_SECONDS); the client reconnects with Last-Event-ID and misses nothing.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import httpx

from .api_fields import get
from .client import Api
from .errors import ApiError, NetworkError


@dataclass(frozen=True)
class Event:
    event: str
    data: str
    id: str | None = None  # the last event id in force when this event was dispatched
    retry: int | None = None


class Parser:
    """Feed lines (without their line terminator); `feed` returns an Event when a blank line
    dispatches one. Follows the WHATWG rules: `data` lines join with newlines, one leading
    space after the colon is dropped, comments (`:`) and unknown fields are ignored, an id
    with NUL is ignored, an event without data is not dispatched, the id persists."""

    def __init__(self) -> None:
        self.last_event_id: str | None = None
        self.retry: int | None = None
        self._event = ""
        self._data: list[str] = []
        self._first = True

    def feed(self, line: str) -> Event | None:
        if self._first:
            self._first = False
            line = line.removeprefix("\ufeff")
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            if "\x00" not in value:
                self.last_event_id = value or None
        elif name == "retry":
            if value.isascii() and value.isdigit():
                self.retry = int(value)
        return None

    def _dispatch(self) -> Event | None:
        if not self._data:
            self._event = ""
            return None
        event = Event(event=self._event or "message", data="\n".join(self._data),
                      id=self.last_event_id, retry=self.retry)
        self._event, self._data = "", []
        return event


def parse(lines: Iterable[str], parser: Parser | None = None) -> Iterator[Event]:
    parser = parser or Parser()
    for line in lines:
        for part in _split(line):
            event = parser.feed(part)
            if event is not None:
                yield event


def _split(line: str) -> list[str]:
    # Line iterators differ on lone CRs and keep-ends; normalise to bare lines.
    line = line.rstrip("\n")
    if line.endswith("\r"):
        line = line[:-1]
    return line.replace("\r\n", "\n").replace("\r", "\n").split("\n") if ("\r" in line or "\n" in line) else [line]


# --- the session's event stream ---------------------------------------------------------------

STREAM_READ_TIMEOUT = 60.0  # the server sends a keep-alive comment every 15 s


def session_events(api: Api, exposure: str, session_id: str, *, stop: Callable[[], bool],
                   deadline: float | None = None, sleep: Callable[[float], None] = time.sleep,
                   poll_interval: float = 1.0) -> Iterator[dict]:
    """The session's lifecycle events, oldest first, until the stream says the session is
    terminal, `stop()` is true after an event or a reconnect, or the monotonic `deadline`
    passes (checked on every line, keep-alives included). Falls back to polling the paginated
    event list when the server offers no stream."""

    def late() -> bool:
        return deadline is not None and time.monotonic() >= deadline

    path = f"/{exposure}/sessions/{session_id}/events/stream"
    last_id: str | None = None
    retry_s = 2.0
    failures = 0
    while True:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
        if last_id:
            headers["Last-Event-ID"] = last_id
        parser = Parser()
        ended = False
        try:
            with api.stream("GET", path, headers=headers,
                            timeout=httpx.Timeout(30.0, read=STREAM_READ_TIMEOUT)) as response:
                ctype = response.headers.get("content-type", "")
                if not ctype.startswith("text/event-stream"):
                    yield from _poll_events(api, exposure, session_id, stop=stop, late=late,
                                            sleep=sleep, interval=poll_interval)
                    return
                failures = 0
                for line in response.iter_lines():
                    if late():
                        return
                    event = None
                    for part in _split(line):
                        event = parser.feed(part) or event
                    if event is None:
                        continue
                    if event.event == "end":
                        ended = True
                        break
                    if event.event != "session_event":
                        continue
                    last_id = event.id or last_id
                    try:
                        payload = json.loads(event.data)
                    except ValueError:
                        continue
                    yield payload
                    if stop():
                        return
        except ApiError as exc:
            if exc.status in (404, 405, 406) and exc.code not in ("session_not_found",):
                yield from _poll_events(api, exposure, session_id, stop=stop, late=late,
                                        sleep=sleep, interval=poll_interval)
                return
            raise
        except NetworkError:
            failures += 1  # a dropped connection or a silent one: reconnect where it stopped
            if failures > 5:
                raise
        if ended or stop() or late():
            return
        if parser.retry is not None:
            retry_s = max(0.2, parser.retry / 1000)
        sleep(min(retry_s, 5.0))


def _poll_events(api: Api, exposure: str, session_id: str, *, stop: Callable[[], bool],
                 late: Callable[[], bool], sleep: Callable[[float], None],
                 interval: float) -> Iterator[dict]:
    """The same events from the paginated list (events are few: each poll reads it whole and
    yields the new ones)."""
    path = f"/{exposure}/sessions/{session_id}/events"
    seen: set = set()
    terminal = ("stopped", "error")
    while True:
        for event in api.paginate(path, page_size=100):
            key = get("event", event, "id")
            if key in seen:
                continue
            seen.add(key)
            yield event
            if stop():
                return
        if stop() or late():
            return
        session = api.data("GET", f"/{exposure}/sessions/{session_id}")
        if get("session", session, "status") in terminal:
            return
        sleep(interval)
