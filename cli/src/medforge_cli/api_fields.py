"""Every API response field the CLI reads, declared in one place.

Commands read response fields only through `get(kind, obj, path)`, which refuses a path not
declared here, and the test suite checks each declaration against the OpenAPI schema the
platform serves (`/api/v2/schema/`): an API change that removes or renames a field the CLI
depends on fails a test instead of a user's command.

Paths are dotted (`pack.slug`); `[]` steps into a list's items (`snapshots[].name`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_MISSING = object()

_SNAPSHOT = ("id", "name", "kind", "created_at", "size_bytes", "session_id")
_SUBMISSION = ("id", "competition", "status", "description", "rows", "error", "created_at",
               "scored_at", "score")
_TOKEN = ("id", "name", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at",
          "active")
_COMPETITION = ("slug", "title", "exposure", "dataset", "metric", "higher_is_better",
                "daily_cap")

FIELDS: dict[str, tuple[str, ...]] = {
    "user": ("id", "email", "handle", "display_name", "is_admin", "can_use_internal",
             "max_concurrent_sessions"),
    "token": _TOKEN,
    "token_secret": _TOKEN + ("secret",),
    "pack": ("id", "slug", "name", "description", "exposure", "deprecated", "is_default"),
    "session": ("id", "slug", "exposure", "status", "pack.slug", "pack.name", "gpu.index",
                "host", "ide_url", "created_at", "started_at", "stop_requested_at",
                "stopped_at", "error_message", "restored_from")
               + tuple(f"snapshots[].{f}" for f in _SNAPSHOT),
    # Actions (create, restore, stop) answer {session, message}; reads answer the session.
    "session_action": ("session", "message"),
    "session_current": ("session",),
    "event": ("id", "at", "kind", "message"),
    "snapshot": _SNAPSHOT,
    "competition": _COMPETITION,
    "competition_detail": _COMPETITION + ("description", "rules", "remaining_today",
                                          "max_upload_bytes", "has_private_board",
                                          "submission_formats[].header",
                                          "submission_formats[].description"),
    "dataset_file": ("name", "area", "size", "modified", "url"),
    "submission": _SUBMISSION,
    "submission_created": _SUBMISSION + ("daily_cap", "remaining_today"),
    "leaderboard_row": ("rank", "handle", "display_name", "score", "submission_count",
                        "best_at"),
    "meta": ("request_id", "next_cursor", "has_more"),
    "problem": ("type", "title", "status", "detail", "code", "request_id", "errors[].field",
                "errors[].message", "errors[].line"),
}


@dataclass(frozen=True)
class Operation:
    """An API operation the CLI calls and the resource kind its `data` holds."""

    method: str
    path: str  # as in the OpenAPI document
    kind: str | None  # None: the CLI reads nothing from the body
    many: bool = False
    # Where the resource may sit inside `data`: "" is data itself. Several roots: the CLI
    # accepts each (it prefers the first present), so the schema must offer at least one.
    roots: tuple[str, ...] = ("",)


S = "/api/v2/{exposure}"
OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", "/api/v2/me", "user"),
    Operation("GET", "/api/v2/me/tokens", "token", many=True),
    Operation("POST", "/api/v2/me/tokens", "token_secret"),
    Operation("DELETE", "/api/v2/me/tokens/{token_id}", "token"),
    Operation("POST", "/api/v2/me/tokens/{token_id}/rotate", "token_secret"),
    Operation("GET", f"{S}/packs", "pack", many=True),
    Operation("GET", f"{S}/sessions", "session", many=True),
    Operation("POST", f"{S}/sessions", "session", roots=("session", "")),
    Operation("GET", f"{S}/sessions/current", "session_current"),
    Operation("GET", f"{S}/sessions/current", "session", roots=("session",)),
    Operation("GET", f"{S}/sessions/{{session_id}}", "session"),
    Operation("POST", f"{S}/sessions/{{session_id}}/stop", "session_action"),
    Operation("POST", f"{S}/sessions/{{session_id}}/stop", "session", roots=("session",)),
    # The SSE stream carries the same event objects as this list.
    Operation("GET", f"{S}/sessions/{{session_id}}/events", "event", many=True),
    Operation("GET", f"{S}/sessions/{{session_id}}/events/stream", None),
    Operation("GET", f"{S}/snapshots", "snapshot", many=True),
    Operation("POST", f"{S}/snapshots/{{snapshot_id}}/restore", "session", roots=("session", "")),
    Operation("GET", f"{S}/competitions", "competition", many=True),
    Operation("GET", f"{S}/competitions/{{slug}}", "competition_detail"),
    Operation("GET", f"{S}/competitions/{{slug}}/leaderboard", "leaderboard_row", many=True),
    Operation("POST", f"{S}/competitions/{{slug}}/submissions", "submission_created"),
    Operation("GET", f"{S}/competitions/{{slug}}/submissions/me", "submission", many=True),
    Operation("GET", f"{S}/datasets/{{slug}}/files", "dataset_file", many=True),
    Operation("GET", f"{S}/datasets/{{slug}}/files/{{name}}", None),
)

_DECLARED = {kind: frozenset(paths) for kind, paths in FIELDS.items()}
# A declared `a.b` also declares reading `a` itself (to test it for null).
for _kind, _paths in FIELDS.items():
    _DECLARED[_kind] = _DECLARED[_kind] | {p.split(".")[0].split("[]")[0] for p in _paths}


class UndeclaredField(AssertionError):
    pass


def get(kind: str, obj: Any, path: str, default: Any = None) -> Any:
    """obj[path] for a declared field of `kind` (dotted path; missing or null → default)."""
    if path not in _DECLARED.get(kind, ()):
        raise UndeclaredField(f"{kind}.{path} is not declared in medforge_cli.api_fields.FIELDS")
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, dict):
            return default
        value = value.get(part, _MISSING)
        if value is _MISSING or value is None:
            return default
    return value


def items(kind: str, obj: Any, path: str) -> list:
    """The list at a declared `path[].…` of `kind` (empty when absent)."""
    if not any(p.startswith(path + "[].") for p in _DECLARED.get(kind, ())):
        raise UndeclaredField(f"{kind}.{path}[] is not declared in medforge_cli.api_fields.FIELDS")
    value = obj.get(path) if isinstance(obj, dict) else None
    return value if isinstance(value, list) else []


def item_get(kind: str, path: str, item: Any, name: str, default: Any = None) -> Any:
    """A field of one item of the declared list `path` of `kind` (`snapshots[].name`)."""
    declared = f"{path}[].{name}"
    if declared not in _DECLARED.get(kind, ()):
        raise UndeclaredField(f"{kind}.{declared} is not declared in medforge_cli.api_fields.FIELDS")
    if not isinstance(item, dict):
        return default
    value = item.get(name)
    return default if value is None else value


def session_of(data: Any) -> dict:
    """The session in an action's answer: `data.session` when present (create, restore and
    stop answer {session, message}), else `data` itself (older servers, and reads)."""
    if isinstance(data, dict) and isinstance(data.get("session"), dict):
        return data["session"]
    return data if isinstance(data, dict) else {}
