"""Personal API token format: `mf_<43 url-safe chars>`; stored as sha256 hex only."""
from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "mf_"


def new_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def display_prefix(secret: str) -> str:
    return secret[:10]


def token_from_header(value: str | None) -> str | None:
    """The secret of an `Authorization: Bearer <secret>` header value, else None."""
    if not value or not value.startswith("Bearer "):
        return None
    return value[len("Bearer "):].strip() or None
