"""Which surface a page is served on (EXTERNAL or INTERNAL), decided from the request's host,
and the links between surfaces and to session hosts."""
from __future__ import annotations

from django.conf import settings

from medforge.core.exposure import EXTERNAL, INTERNAL


def _hostname(request) -> str:
    return request.get_host().rsplit(":", 1)[0].lower() if request.get_host() else ""


def surface_of(request) -> str:
    """`internal.<base>` is the INTERNAL surface; every other platform host (the base domain,
    `external.<base>`, and loopback names used in development) is EXTERNAL."""
    return INTERNAL if _hostname(request) == f"internal.{settings.BASE_DOMAIN}".lower() else EXTERNAL


def surface_url(request, exposure: str, path: str = "/") -> str:
    """An absolute link to the same page family on the other surface, keeping the scheme and
    port the browser used (so development on a random port keeps working)."""
    host = request.get_host()
    port = host.rsplit(":", 1)[1] if ":" in host else ""
    name = settings.BASE_DOMAIN if exposure == EXTERNAL else f"internal.{settings.BASE_DOMAIN}"
    return f"{request.scheme}://{name}{':' + port if port else ''}{path}"
