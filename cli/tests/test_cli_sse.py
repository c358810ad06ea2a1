"""Server-sent events: the WHATWG parsing rules, and following a session's stream (resume
with Last-Event-ID, stop at `end`, fall back to polling)."""
from __future__ import annotations

import httpx
from cli_fakes import BASE, FakeApi, event, page, session, sse
from medforge_cli.client import Api
from medforge_cli.sse import Event, Parser, parse, session_events

SID = "5b0f6d3e-1c1a-4a53-9a55-0d7c5e1f2a01"
STREAM = f"/external/sessions/{SID}/events/stream"


def events_of(text: str) -> list[Event]:
    return list(parse(text.split("\n")))


def test_data_lines_join_and_one_space_is_dropped():
    got = events_of("event: session_event\ndata: first\ndata:  second\ndata:third\n\n")
    assert got == [Event(event="session_event", data="first\n second\nthird")]


def test_comments_unknown_fields_and_events_without_data_are_skipped():
    got = events_of(": keep-alive\n\nfoo: bar\n\nevent: lonely\n\ndata: x\n\n")
    assert [(e.event, e.data) for e in got] == [("message", "x")]


def test_the_id_persists_and_an_id_with_nul_is_ignored():
    got = events_of("id: 7\ndata: a\n\ndata: b\n\nid: 8\x00\ndata: c\n\nid\ndata: d\n\n")
    assert [(e.data, e.id) for e in got] == [("a", "7"), ("b", "7"), ("c", "7"), ("d", None)]


def test_retry_crlf_and_bom():
    parser = Parser()
    got = list(parse(["\ufeffretry: 1500\r", "data: x\r", "\r", "retry: nope", "data:y", ""], parser))
    assert [e.data for e in got] == ["x", "y"] and parser.retry == 1500
    assert [e.data for e in parse(["data: a\r\ndata: b\r\n\r\n"])] == ["a\nb"]


def test_a_field_without_colon_is_a_name_with_an_empty_value():
    assert events_of("data\ndata\n\n") == [Event(event="message", data="\n")]


def test_following_a_stream_resumes_with_last_event_id_until_end():
    api = FakeApi()
    first = sse(("session_event", "1", event(1, "created")), ("session_event", "2", event(2, "workspace_ready")))
    second = sse(("session_event", "3", event(3, "running")), ("end", None, {"status": "stopped"}))
    api.add("GET", STREAM, [first, second])
    client = Api(BASE, "t", transport=api.transport)
    got = list(session_events(client, "external", SID, stop=lambda: False, sleep=lambda s: None))
    assert [e["kind"] for e in got] == ["created", "workspace_ready", "running"]
    calls = api.calls("GET", STREAM)
    assert len(calls) == 2
    assert "last-event-id" not in calls[0].headers and calls[1].headers["last-event-id"] == "2"
    assert calls[0].headers["accept"] == "text/event-stream"
    assert calls[0].headers["authorization"] == "Bearer t"


def test_stop_ends_the_follow_after_an_event():
    api = FakeApi().add("GET", STREAM, sse(*[("session_event", str(i), event(i, f"k{i}")) for i in range(1, 6)]))
    seen = []
    for e in session_events(Api(BASE, "t", transport=api.transport), "external", SID,
                            stop=lambda: len(seen) >= 2, sleep=lambda s: None):
        seen.append(e)
    assert [e["kind"] for e in seen] == ["k1", "k2"]


def test_without_a_stream_the_event_list_is_polled():
    api = FakeApi()
    api.add("GET", STREAM, httpx.Response(406, json={"detail": "no"}))
    api.add("GET", f"/external/sessions/{SID}/events",
            [page([event(1, "created")]), page([event(1, "created"), event(2, "stopped")])])
    api.add("GET", f"/external/sessions/{SID}", [page(session("starting")), page(session("stopped"))])
    got = list(session_events(Api(BASE, "t", transport=api.transport), "external", SID,
                              stop=lambda: False, sleep=lambda s: None))
    assert [e["kind"] for e in got] == ["created", "stopped"]
