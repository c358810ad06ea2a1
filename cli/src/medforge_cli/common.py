"""What every command shares: the invocation state, common options, look-ups by name."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated

import httpx
import typer

from . import config
from .api_fields import get, session_of
from .client import Api
from .errors import NotFoundError, UsageError
from .output import Format, choose_format

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
ACTIVE = ("queued", "starting", "running", "stopping")
TERMINAL = ("stopped", "error")


@dataclass
class State:
    profile: str | None = None
    format: Format | None = None
    transport: httpx.BaseTransport | None = None
    async_transport: httpx.AsyncBaseTransport | None = None
    _settings: dict = field(default_factory=dict)

    def settings(self, url: str | None = None) -> config.Settings:
        key = url or ""
        if key not in self._settings:
            self._settings[key] = config.resolve(profile=self.profile, url=url)
        return self._settings[key]

    def api(self, *, auth: bool = True, url: str | None = None) -> Api:
        settings = self.settings(url)
        base = settings.require_url()
        token = settings.require_token() if auth else settings.token
        return Api(base, token, transport=self.transport)

    def fmt(self, requested: Format | None) -> Format:
        return choose_format(requested or self.format)


def state(ctx: typer.Context) -> State:
    root = ctx.find_root()
    if not isinstance(root.obj, State):
        root.obj = State()
    return root.obj


FormatOpt = Annotated[Format | None, typer.Option(
    "--format", "-o", case_sensitive=False,
    help="Output format: table (default on a terminal), json (default when piped) or csv.")]
InternalOpt = Annotated[bool, typer.Option(
    "--internal", help="Use the INTERNAL surface (needs the internal entitlement).")]
TimeoutOpt = Annotated[float, typer.Option(
    "--timeout", min=1.0, help="Give up waiting after this many seconds (exit 1).")]


def examples(*lines: str) -> str:
    """A help epilog of example command lines, kept as written (click's \\b marker)."""
    return "Examples:\n\n\b\n" + "\n".join(f"  {line}" for line in lines)


def exposure(internal: bool) -> str:
    return "internal" if internal else "external"


def looks_like_uuid(value: str) -> bool:
    return bool(UUID_RE.match(value or ""))


# --- look-ups -----------------------------------------------------------------------------------


def find_session(api: Api, surface: str, ref: str | None) -> dict:
    """A session by uuid, slug or id prefix; `current` or nothing: the newest active one."""
    ref = (ref or "").strip()
    if ref in ("", "current", "-"):
        data = api.data("GET", f"/{surface}/sessions/current")
        session = get("session_current", data, "session")
        if not session:
            raise NotFoundError(f"No active session on the {surface} surface "
                                f"(name one: `medforge sessions list`).")
        return session
    if looks_like_uuid(ref):
        return api.data("GET", f"/{surface}/sessions/{ref}")
    matches = [s for s in api.paginate(f"/{surface}/sessions", limit=500)
               if get("session", s, "slug") == ref.lower()
               or str(get("session", s, "id", "")).startswith(ref.lower())]
    if not matches:
        raise NotFoundError(f"No session {ref!r} of yours on the {surface} surface.")
    if len(matches) > 1:
        raise UsageError(f"{ref!r} names {len(matches)} sessions; give more of the id.")
    return matches[0]


def find_snapshot(api: Api, surface: str, ref: str) -> dict:
    """A snapshot by uuid, name (`ws@stop-…`) or id prefix."""
    ref = (ref or "").strip()
    if not ref:
        raise UsageError("Name a snapshot (`medforge snapshots list`).")
    matches = [s for s in api.paginate(f"/{surface}/snapshots", limit=2000)
               if str(get("snapshot", s, "id", "")) == ref.lower()
               or get("snapshot", s, "name") == ref
               or (not looks_like_uuid(ref) and str(get("snapshot", s, "id", "")).startswith(ref.lower()))]
    if not matches:
        if looks_like_uuid(ref):
            return {"id": ref}  # not in the list the CLI read: let the server decide
        raise NotFoundError(f"No snapshot {ref!r} of yours on the {surface} surface.")
    if len(matches) > 1:
        raise UsageError(f"{ref!r} names {len(matches)} snapshots; give the id.")
    return matches[0]


def find_token(api: Api, ref: str) -> dict:
    """One of your tokens by id, prefix (`mf_AbCdEfG`) or unique name."""
    ref = (ref or "").strip()
    tokens = list(api.paginate("/me/tokens", limit=1000))
    for kind_path in ("id", "prefix"):
        exact = [t for t in tokens if str(get("token", t, kind_path, "")) == ref]
        if exact:
            return exact[0]
    named = [t for t in tokens if get("token", t, "name") == ref and get("token", t, "active")]
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        raise UsageError(f"{len(named)} active tokens are named {ref!r}; give the id or prefix.")
    prefixed = [t for t in tokens if str(get("token", t, "id", "")).startswith(ref)]
    if len(prefixed) == 1:
        return prefixed[0]
    raise NotFoundError(f"No token {ref!r} of yours (`medforge tokens list`).")


def session_from_action(data) -> dict:
    return session_of(data)
