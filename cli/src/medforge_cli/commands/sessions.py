"""`medforge sessions`: start, list, status, open, stop and port-forward GPU IDE sessions."""
from __future__ import annotations

import time
import webbrowser
from typing import Annotated

import typer

from ..api_fields import get, item_get, items
from ..client import Api
from ..common import (
    ACTIVE,
    TERMINAL,
    FormatOpt,
    InternalOpt,
    TimeoutOpt,
    examples,
    exposure,
    find_session,
    find_snapshot,
    session_from_action,
    state,
)
from ..errors import CliError, ConflictError, UsageError
from ..output import Column, Format, human_time, note, render
from ..progress import SessionWatch
from ..sse import session_events

app = typer.Typer(help="GPU IDE sessions: start, list, status, open, stop, port-forward.",
                  no_args_is_help=True)

SessionArg = Annotated[str | None, typer.Argument(
    metavar="SESSION", help="Session id, slug or id prefix; omitted or 'current': your newest active session.")]


def _snapshots(session: dict) -> str:
    names = [str(item_get("session", "snapshots", s, "name", ""))
             for s in items("session", session, "snapshots")]
    return ", ".join(n for n in names if n) or "-"


SESSION_COLUMNS = [
    Column("id", "session", "id"),
    Column("slug", "session", "slug"),
    Column("status", "session", "status"),
    Column("exposure", "session", "exposure"),
    Column("pack", "session", "pack.slug"),
    Column("gpu", "session", "gpu.index", lambda v: "-" if v is None else str(v)),
    Column("ide url", "session", "ide_url"),
    Column("created", "session", "created_at", human_time),
    Column("started", "session", "started_at", human_time),
    Column("stop requested", "session", "stop_requested_at", human_time),
    Column("stopped", "session", "stopped_at", human_time),
    Column("error", "session", "error_message"),
    Column("restored from", "session", "restored_from"),
    Column("snapshots", "session", "snapshots", value=_snapshots, show=str),
]
LIST_COLUMNS = [
    Column("slug", "session", "slug"),
    Column("status", "session", "status"),
    Column("pack", "session", "pack.slug"),
    Column("gpu", "session", "gpu.index", lambda v: "-" if v is None else str(v)),
    Column("created", "session", "created_at", human_time),
    Column("stopped", "session", "stopped_at", human_time),
    Column("id", "session", "id"),
]
EVENT_COLUMNS = [
    Column("at", "event", "at", human_time),
    Column("kind", "event", "kind"),
    Column("message", "event", "message"),
]


# --- waiting ------------------------------------------------------------------------------------


def wait_session(api: Api, surface: str, session: dict, *, until: tuple[str, ...],
                 timeout: float, label: str) -> dict:
    """Follow the session's event stream with live progress until its status is in `until`
    or terminal; returns the session as last read. Raises CliError (exit 1) on timeout."""
    sid = get("session", session, "id")
    current = {"session": session}
    deadline = time.monotonic() + timeout

    def done() -> bool:
        status = get("session", current["session"], "status")
        return status in until or status in TERMINAL

    with SessionWatch(label) as watch:
        watch.session(session)
        if not done():
            for event in session_events(api, surface, sid, stop=done, deadline=deadline):
                watch.event(event)
                current["session"] = api.data("GET", f"/{surface}/sessions/{sid}")
                watch.session(current["session"])
            current["session"] = api.data("GET", f"/{surface}/sessions/{sid}")
            watch.session(current["session"])
    if not done():
        raise CliError(f"Gave up after {int(timeout)}s: session {get('session', current['session'], 'slug')} "
                       f"is still {get('session', current['session'], 'status')}.")
    return current["session"]


def finish_start(api: Api, surface: str, session: dict, *, wait: bool, open_ide: bool,
                 timeout: float, fmt: Format) -> None:
    """After create/restore: optionally wait for `running` and open the IDE, then print."""
    status = get("session", session, "status")
    if status == "queued":
        note("Queued: no GPU is free; the session starts when one is (first come, first served).")
    if wait or open_ide:
        session = wait_session(api, surface, session, until=("running",), timeout=timeout,
                               label=f"Starting session {get('session', session, 'slug')}")
    render(session, SESSION_COLUMNS, fmt, many=False)
    status = get("session", session, "status")
    if wait or open_ide:
        if status != "running":
            raise CliError(f"Session {get('session', session, 'slug')} ended {status}: "
                           f"{get('session', session, 'error_message') or 'no reason given'}")
        if open_ide:
            _open(session)


def _open(session: dict) -> None:
    url = get("session", session, "ide_url")
    if not url:
        raise ConflictError(f"Session {get('session', session, 'slug')} is "
                            f"{get('session', session, 'status')}: its IDE opens once it runs.")
    note(f"Opening {url}")
    try:
        webbrowser.open(url, new=2)
    except webbrowser.Error as exc:
        note(f"Could not start a browser ({exc}); open the URL yourself.")


# --- commands -----------------------------------------------------------------------------------


@app.command(epilog=examples(
    'medforge sessions start --wait',
    'medforge sessions start --pack jupyterlab --wait --open',
    'medforge sessions start --restore ws-1234@stop-1767225600000 --wait',
    'medforge sessions start --internal --queue --wait',
))
def start(
    ctx: typer.Context,
    pack: Annotated[str | None, typer.Option("--pack", help="Pack slug or id "
                                             "(`medforge packs list`); default: the default pack.")] = None,
    internal: InternalOpt = False,
    restore: Annotated[str | None, typer.Option("--restore", metavar="SNAPSHOT",
                                                help="Start from this snapshot's workspace "
                                                "(id or name, `medforge snapshots list`).")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the start with live progress "
                                       "until the session runs (exit 1 if it fails).")] = False,
    open_ide: Annotated[bool, typer.Option("--open", help="Open the IDE in a browser once it "
                                           "runs (implies --wait).")] = False,
    queue: Annotated[bool, typer.Option("--queue", help="When no GPU is free, wait in line "
                                        "(status `queued`) instead of failing with "
                                        "no_gpus_available.")] = False,
    timeout: TimeoutOpt = 600.0,
    fmt: FormatOpt = None,
) -> None:
    """Start a session (one GPU, your workspace, the IDE at its own host)."""
    st = state(ctx)
    surface = exposure(internal)
    if restore and pack:
        raise UsageError("--restore starts from the snapshot's own pack; drop --pack.")
    with st.api() as api:
        if restore:
            snapshot = find_snapshot(api, surface, restore)
            data = api.data("POST", f"/{surface}/snapshots/{get('snapshot', snapshot, 'id')}/restore",
                            json={})
        else:
            body: dict = {}
            if pack:
                body["pack_id"] = pack
            if queue:
                body["wait"] = True
            data = api.data("POST", f"/{surface}/sessions", json=body)
        if isinstance(data, dict) and data.get("message"):
            note(str(get("session_action", data, "message")))
        session = session_from_action(data)
        finish_start(api, surface, session, wait=wait, open_ide=open_ide, timeout=timeout,
                     fmt=st.fmt(fmt))


@app.command("list")
def list_(
    ctx: typer.Context,
    internal: InternalOpt = False,
    status: Annotated[str | None, typer.Option("--status", help="Only sessions in this state "
                                               "(queued, starting, running, stopping, stopped, "
                                               "error).")] = None,
    active: Annotated[bool, typer.Option("--active", help="Only active sessions.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 50,
    fmt: FormatOpt = None,
) -> None:
    """Your sessions, newest first."""
    st = state(ctx)
    params = {"status": status} if status else {}
    with st.api() as api:
        rows = list(api.paginate(f"/{exposure(internal)}/sessions", params, limit=None if active else limit))
    if active:
        rows = [r for r in rows if get("session", r, "status") in ACTIVE][:limit]
    render(rows, LIST_COLUMNS, st.fmt(fmt), many=True, empty="No sessions.")


@app.command(epilog=examples(
    'medforge sessions status',
    'medforge sessions status abcd2345 --watch',
    'medforge sessions status current --events -o json',
))
def status(
    ctx: typer.Context,
    session: SessionArg = None,
    internal: InternalOpt = False,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Keep following its events "
                                        "until it is terminal (Ctrl-C to leave).")] = False,
    events: Annotated[bool, typer.Option("--events", help="Show its lifecycle events "
                                         "instead.")] = False,
    timeout: TimeoutOpt = 24 * 3600.0,
    fmt: FormatOpt = None,
) -> None:
    """A session's state (and IDE URL while it runs)."""
    st = state(ctx)
    surface = exposure(internal)
    with st.api() as api:
        found = find_session(api, surface, session)
        if watch:
            found = wait_session(api, surface, found, until=(), timeout=timeout,
                                 label=f"Watching session {get('session', found, 'slug')}")
        if events:
            rows = list(api.paginate(f"/{surface}/sessions/{get('session', found, 'id')}/events"))
            render(rows, EVENT_COLUMNS, st.fmt(fmt), many=True, empty="No events.")
            return
    render(found, SESSION_COLUMNS, st.fmt(fmt), many=False)


@app.command("open")
def open_(
    ctx: typer.Context,
    session: SessionArg = None,
    internal: InternalOpt = False,
    print_only: Annotated[bool, typer.Option("--print", help="Only print the URL.")] = False,
) -> None:
    """Open the session's IDE in your browser (sign in there if asked)."""
    st = state(ctx)
    with st.api() as api:
        found = find_session(api, exposure(internal), session)
    url = get("session", found, "ide_url")
    if not url:
        raise ConflictError(f"Session {get('session', found, 'slug')} is "
                            f"{get('session', found, 'status')}: its IDE opens once it runs.")
    print(url)
    if not print_only:
        _open(found)


@app.command(epilog=examples(
    'medforge sessions stop',
    'medforge sessions stop abcd2345 --wait',
))
def stop(
    ctx: typer.Context,
    session: SessionArg = None,
    internal: InternalOpt = False,
    wait: Annotated[bool, typer.Option("--wait", help="Follow until it is stopped and its "
                                       "workspace snapshotted.")] = False,
    timeout: TimeoutOpt = 600.0,
    fmt: FormatOpt = None,
) -> None:
    """Stop a session; its workspace is snapshotted (`medforge snapshots list`)."""
    st = state(ctx)
    surface = exposure(internal)
    with st.api() as api:
        found = find_session(api, surface, session)
        data = api.data("POST", f"/{surface}/sessions/{get('session', found, 'id')}/stop")
        if isinstance(data, dict) and data.get("message"):
            note(str(get("session_action", data, "message")))
        stopped = session_from_action(data) or found
        if wait:
            stopped = wait_session(api, surface, stopped, until=TERMINAL, timeout=timeout,
                                   label=f"Stopping session {get('session', stopped, 'slug')}")
    render(stopped, SESSION_COLUMNS, st.fmt(fmt), many=False)
    if wait:
        if get("session", stopped, "status") == "error":
            raise CliError(f"Session {get('session', stopped, 'slug')} ended in error: "
                           f"{get('session', stopped, 'error_message') or 'no reason given'}")
        names = _snapshots(stopped)
        if names != "-":
            note(f"Workspace snapshot: {names}")


@app.command("port-forward", epilog=examples(
    'medforge sessions port-forward current 6006:6006     # TensorBoard at http://localhost:6006/',
    'medforge sessions port-forward abcd2345 8888          # same port on both sides',
    'medforge sessions port-forward abcd2345 0:6006        # any free local port (printed)',
    'medforge sessions port-forward abcd2345 9000:8080 --path-template /',
))
def port_forward(
    ctx: typer.Context,
    session: Annotated[str, typer.Argument(metavar="SESSION",
                                           help="Session id, slug, id prefix or 'current'.")],
    ports: Annotated[str, typer.Argument(metavar="LOCAL:REMOTE",
                                         help="Local port and the port inside the session "
                                         "(one number: the same on both sides; 0: any free "
                                         "local port).")],
    internal: InternalOpt = False,
    path_template: Annotated[str | None, typer.Option(
        "--path-template", help="Where the session's IDE proxies REMOTE on its host; {port} is "
        "replaced (default: code-server's /proxy/{port}/, or $MEDFORGE_PORT_FORWARD_PATH, or "
        "the profile's port_forward_path).")] = None,
    bind: Annotated[str, typer.Option("--bind", help="Local address to listen on.")] = "127.0.0.1",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every request.")] = False,
) -> None:
    """Forward a local port to a port inside the session, through the platform's edge with
    your token: HTTP and WebSockets, so a TensorBoard or a notebook server inside opens on
    your machine. Only pages served through the forward itself may call it (other sites'
    pages are refused)."""
    from ..portforward import parse_ports, run_forward

    st = state(ctx)
    local, remote = parse_ports(ports)
    settings = st.settings()
    template = path_template or settings.port_forward_path
    if "{port}" not in template and path_template is None and template != "/":
        raise UsageError("The port-forward path template must contain {port} (or be '/').")
    with st.api() as api:
        found = find_session(api, exposure(internal), session)
    base = get("session", found, "ide_url")
    if not base:
        raise ConflictError(f"Session {get('session', found, 'slug')} is "
                            f"{get('session', found, 'status')}: a port can be forwarded once it runs.")
    run_forward(remote_base=str(base), template=template, remote_port=remote, local_port=local,
                bind=bind, token=settings.require_token(), transport=st.async_transport,
                verbose=verbose, label=str(get("session", found, "slug")))
