"""`medforge snapshots`: workspace snapshots taken when sessions stop, and restoring one."""
from __future__ import annotations

from typing import Annotated

import typer

from ..api_fields import get
from ..common import (
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
from ..output import Column, human_size, human_time, note, render
from .sessions import finish_start

app = typer.Typer(help="Workspace snapshots: list, restore into a new session.",
                  no_args_is_help=True)

SNAPSHOT_COLUMNS = [
    Column("name", "snapshot", "name"),
    Column("kind", "snapshot", "kind"),
    Column("created", "snapshot", "created_at", human_time),
    Column("size", "snapshot", "size_bytes", human_size),
    Column("session", "snapshot", "session_id"),
    Column("id", "snapshot", "id"),
]


@app.command("list")
def list_(
    ctx: typer.Context,
    internal: InternalOpt = False,
    session: Annotated[str | None, typer.Option("--session", help="Only this session's "
                                                "(id, slug or 'current').")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 100,
    fmt: FormatOpt = None,
) -> None:
    """Your snapshots, newest first."""
    st = state(ctx)
    surface = exposure(internal)
    with st.api() as api:
        if session:
            found = find_session(api, surface, session)
            sid = str(get("session", found, "id"))
            rows = [s for s in api.paginate(f"/{surface}/snapshots", limit=2000)
                    if str(get("snapshot", s, "session_id")) == sid][:limit]
        else:
            rows = list(api.paginate(f"/{surface}/snapshots", limit=limit))
    render(rows, SNAPSHOT_COLUMNS, st.fmt(fmt), many=True, empty="No snapshots.")


@app.command(epilog=examples('medforge snapshots restore ws-1234@stop-1767225600000 --wait --open'))
def restore(
    ctx: typer.Context,
    snapshot: Annotated[str, typer.Argument(metavar="SNAPSHOT", help="Snapshot id or name.")],
    internal: InternalOpt = False,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the start until it runs.")] = False,
    open_ide: Annotated[bool, typer.Option("--open", help="Open the IDE once it runs "
                                           "(implies --wait).")] = False,
    timeout: TimeoutOpt = 600.0,
    fmt: FormatOpt = None,
) -> None:
    """Start a new session whose workspace is the snapshot's."""
    st = state(ctx)
    surface = exposure(internal)
    with st.api() as api:
        found = find_snapshot(api, surface, snapshot)
        data = api.data("POST", f"/{surface}/snapshots/{get('snapshot', found, 'id')}/restore", json={})
        if isinstance(data, dict) and data.get("message"):
            note(str(get("session_action", data, "message")))
        finish_start(api, surface, session_from_action(data), wait=wait, open_ide=open_ide,
                     timeout=timeout, fmt=st.fmt(fmt))
