"""`medforge tokens`: your personal API tokens."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from .. import config
from ..api_fields import get
from ..common import FormatOpt, examples, find_token, state
from ..errors import UsageError
from ..output import Column, Format, human_bool, human_time, note, render

app = typer.Typer(help="Personal API tokens: list, create, revoke, rotate.", no_args_is_help=True)


def _current(st) -> str | None:
    return st.settings().token


def _is_current(token: dict, secret: str | None) -> bool:
    prefix = get("token", token, "prefix")
    return bool(secret and prefix and secret.startswith(str(prefix)))


TOKEN_COLUMNS = [
    Column("id", "token", "id"),
    Column("name", "token", "name"),
    Column("prefix", "token", "prefix"),
    Column("created", "token", "created_at", human_time),
    Column("expires", "token", "expires_at", human_time),
    Column("last used", "token", "last_used_at", human_time),
    Column("revoked", "token", "revoked_at", human_time),
    Column("active", "token", "active", human_bool),
]
SECRET_COLUMNS = TOKEN_COLUMNS[:3] + [Column("expires", "token_secret", "expires_at", human_time),
                                      Column("secret", "token_secret", "secret")]

DURATION_RE = re.compile(r"^(\d+)\s*([smhdw])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_expiry(value: str, now: datetime | None = None) -> str:
    """`30d`, `12h`, `2w` from now, or an ISO date/datetime → ISO 8601 in UTC."""
    now = now or datetime.now(UTC)
    text = value.strip().lower()
    match = DURATION_RE.match(text)
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        if amount <= 0:
            raise UsageError("--expires must be in the future.")
        when = now + timedelta(**{UNITS[unit]: amount})
    else:
        try:
            when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(f"--expires {value!r}: use a duration (30d, 12h, 2w) or an ISO "
                             f"date (2026-12-31).") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        if when <= now:
            raise UsageError("--expires must be in the future.")
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


@app.command("list")
def list_(ctx: typer.Context, fmt: FormatOpt = None) -> None:
    """Your tokens, newest first (the one this CLI uses is marked *)."""
    st = state(ctx)
    secret = _current(st)
    with st.api() as api:
        rows = list(api.paginate("/me/tokens", limit=1000))
    columns = [Column("", "token", "prefix", value=lambda t: "*" if _is_current(t, secret) else "")]
    out = st.fmt(fmt)
    render(rows, (columns if out is Format.table else []) + TOKEN_COLUMNS, out, many=True,
           empty="No tokens.")


@app.command(epilog=examples('medforge tokens create ci --expires 30d'))
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="A name to recognise it by.")],
    expires: Annotated[str | None, typer.Option("--expires", help="Lifetime (30d, 12h, 2w) "
                                                "or an ISO date; default: never.")] = None,
    fmt: FormatOpt = None,
) -> None:
    """Create a token; its secret is shown once."""
    st = state(ctx)
    body = {"name": name}
    if expires:
        body["expires_at"] = parse_expiry(expires)
    with st.api() as api:
        token = api.data("POST", "/me/tokens", json=body)
    out = st.fmt(fmt)
    render(token, SECRET_COLUMNS, out, many=False)
    if out is Format.table:
        note("Copy the secret now: it is not shown again.")


@app.command()
def revoke(
    ctx: typer.Context,
    token: Annotated[str, typer.Argument(metavar="TOKEN", help="Token id, prefix (mf_…) or name.")],
    fmt: FormatOpt = None,
) -> None:
    """Revoke a token: it stops working at once."""
    st = state(ctx)
    settings = st.settings()
    with st.api() as api:
        found = find_token(api, token)
        revoked = api.data("DELETE", f"/me/tokens/{get('token', found, 'id')}")
    render(revoked, TOKEN_COLUMNS, st.fmt(fmt), many=False)
    if _is_current(found, settings.token):
        if settings.token_source == "config":
            config.ConfigFile(settings.config_path).remove_token(settings.profile)
            note(f"That was this CLI's token: removed from profile '{settings.profile}'; "
                 f"run `medforge login` again.")
        else:
            note("That was the token in MEDFORGE_TOKEN: it no longer works.")


@app.command()
def rotate(
    ctx: typer.Context,
    token: Annotated[str, typer.Argument(metavar="TOKEN", help="Token id, prefix (mf_…) or name.")],
    fmt: FormatOpt = None,
) -> None:
    """Replace a token by a new secret (the old one stops working). Rotating the token this
    CLI uses updates the stored profile."""
    st = state(ctx)
    settings = st.settings()
    with st.api() as api:
        found = find_token(api, token)
        new = api.data("POST", f"/me/tokens/{get('token', found, 'id')}/rotate")
    out = st.fmt(fmt)
    render(new, SECRET_COLUMNS, out, many=False)
    if _is_current(found, settings.token):
        if settings.token_source == "config":
            config.ConfigFile(settings.config_path).set_profile(
                settings.profile, token=str(get("token_secret", new, "secret")))
            note(f"This CLI's token was rotated: profile '{settings.profile}' now holds the new one.")
        else:
            note("That was the token in MEDFORGE_TOKEN: set it to the new secret.")
    elif out is Format.table:
        note("Copy the secret now: it is not shown again.")
