"""`medforge packs`: the IDE images a session can start from."""
from __future__ import annotations

import typer

from ..common import FormatOpt, InternalOpt, exposure, state
from ..output import Column, human_bool, render

app = typer.Typer(help="Packs: the IDE images sessions start from.", no_args_is_help=True)

PACK_COLUMNS = [
    Column("slug", "pack", "slug"),
    Column("name", "pack", "name"),
    Column("default", "pack", "is_default", human_bool),
    Column("deprecated", "pack", "deprecated", human_bool),
    Column("exposure", "pack", "exposure"),
    Column("description", "pack", "description"),
    Column("id", "pack", "id"),
]


@app.command("list")
def list_(ctx: typer.Context, internal: InternalOpt = False, fmt: FormatOpt = None) -> None:
    """Packs offered on the surface (`sessions start --pack SLUG`)."""
    st = state(ctx)
    with st.api() as api:
        rows = api.data("GET", f"/{exposure(internal)}/packs") or []
    render(rows, PACK_COLUMNS, st.fmt(fmt), many=True, empty="No packs offered.")
