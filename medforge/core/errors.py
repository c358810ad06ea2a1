"""Domain errors: what a service or selector refuses, named by a stable code.

They carry no HTTP status: the API layer maps each code to a problem through the one registry
(medforge/api/problems.py), and the web UI to a message. Every code raised must be registered
there (a test checks it)."""
from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refusal with a stable snake_case `code` (e.g. `no_gpus_available`) and a sentence for
    people. `errors` lists field-level problems; `headers` (e.g. Retry-After) and `extra`
    members travel to the problem document."""

    def __init__(self, code: str, detail: str | None = None, *,
                 errors: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        self.code = code
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra
        super().__init__(f"{code}: {detail}" if detail else code)
