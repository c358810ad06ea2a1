"""Session host names: `s-<slug>.<exposure>.<base>` → (slug, exposure), and back.

Parsing is a pure function of the Host header and the configured base domain, so the hot path
decides "not a session host" without touching the cache or the database.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from django.conf import settings

from .exposure import EXPOSURES


class SessionHost(NamedTuple):
    slug: str
    exposure: str


@lru_cache(maxsize=4)
def _host_re(base_domain: str) -> re.Pattern[str]:
    # Slugs are 8 chars of lowercase RFC 4648 base32 (sessions_app.models.SLUG_RE); anything
    # else cannot name a session, so it is refused here rather than looked up.
    return re.compile(
        r"^s-([a-z2-7]{8})\.(external|internal)\." + re.escape(base_domain.lower().rstrip("."))
        + r"\.?(?::[0-9]{1,5})?$"
    )


def parse_session_host(host: str | None) -> SessionHost | None:
    """The session a Host header names, or None when it is not a session host.

    Case-insensitive; an explicit port (local runs: `:8000`) and a trailing root dot are
    accepted. Anything else (platform hosts, foreign hosts, malformed slugs) is None.
    """
    if not host or len(host) > 253:
        return None
    match = _host_re(settings.BASE_DOMAIN).match(host.lower())
    if match is None:
        return None
    return SessionHost(match.group(1), match.group(2))


def session_host(slug: str, exposure: str) -> str:
    """The host name of a session's IDE (without scheme or port)."""
    if exposure not in EXPOSURES:
        raise ValueError(f"exposure must be one of {EXPOSURES}, not {exposure!r}")
    return f"s-{slug}.{exposure}.{settings.BASE_DOMAIN}"


def ide_url(*, slug: str, exposure: str) -> str:
    """The "Open IDE" link: the session host on the edge (Caddy), with the scheme and port users
    reach the platform on (PUBLIC_SCHEME, PUBLIC_PORT)."""
    port = f":{settings.PUBLIC_PORT}" if settings.PUBLIC_PORT else ""
    return f"{settings.PUBLIC_SCHEME}://{session_host(slug, exposure)}{port}/"
