"""Errors the CLI reports, and the exit code of each class.

| exit | class     | when                                                                    |
|------|-----------|-------------------------------------------------------------------------|
| 0    | ok        |                                                                         |
| 1    | failed    | the operation ran but ended badly (session `error`, scoring `failed`)   |
| 2    | usage     | bad command line, or the API refused the input (400, 413, 422)          |
| 3    | auth      | no token, invalid/expired token (401), not allowed (403)                |
| 4    | not found | 404 (session, pack, snapshot, competition, file, token)                 |
| 5    | conflict  | 409 (session limit, no free GPU, pack deprecated), 429 (daily cap, rate |
|      |           | limit), and states that forbid the action (the session is not running)  |
| 6    | server    | 5xx (maintenance included), an answer that is not the API's, network    |
| 130  | interrupt | Ctrl-C                                                                  |
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

OK = 0
FAILED = 1
USAGE = 2
AUTH = 3
NOT_FOUND = 4
CONFLICT = 5
SERVER = 6
INTERRUPTED = 130

EXIT_CODES = {
    "failed": FAILED,
    "usage": USAGE,
    "auth": AUTH,
    "not_found": NOT_FOUND,
    "conflict": CONFLICT,
    "server": SERVER,
}


def exit_code_for_status(status: int) -> int:
    """The exit code for an HTTP error status."""
    if status in (401, 403, 407):
        return AUTH
    if status in (404, 410):
        return NOT_FOUND
    if status in (409, 423, 429):
        return CONFLICT
    if status >= 500:
        return SERVER
    if 400 <= status < 500:
        return USAGE
    return SERVER  # a 1xx/3xx where an answer was expected: not the API speaking


class CliError(Exception):
    """An error the CLI prints as one line and exits with `exit_code`."""

    exit_code = FAILED

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code

    def one_line(self) -> str:
        return self.message

    def details(self) -> list[str]:
        return []


class UsageError(CliError):
    exit_code = USAGE


class AuthError(CliError):
    exit_code = AUTH


class ConflictError(CliError):
    exit_code = CONFLICT


class NotFoundError(CliError):
    exit_code = NOT_FOUND


class ServerError(CliError):
    exit_code = SERVER


@dataclass
class ApiError(CliError):
    """An error answer from the API: an RFC 9457 problem document when the API wrote it, or
    whatever an intermediary (the edge, a proxy) answered instead."""

    status: int
    code: str | None = None
    detail: str = ""
    title: str = ""
    request_id: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    retry_after: str | None = None
    method: str = ""
    url: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        Exception.__init__(self, self.one_line())
        self.message = self.one_line()
        self.exit_code = exit_code_for_status(self.status)

    def one_line(self) -> str:
        what = self.detail or self.title or "error"
        parts = [f"HTTP {self.status}"]
        if self.request_id:
            parts.append(f"request {self.request_id}")
        if self.retry_after:
            parts.append(f"retry after {self.retry_after}s")
        label = self.code or (f"{self.method} {self.url}".strip() if self.url else "error")
        return f"{label}: {what} ({', '.join(parts)})"

    def details(self) -> list[str]:
        """Field-level problems (validation, a rejected submission's lines), at most 10."""
        lines = []
        for item in self.errors[:10]:
            where = []
            if item.get("line") is not None:
                where.append(f"line {item['line']}")
            if item.get("field"):
                where.append(str(item["field"]))
            prefix = ", ".join(where)
            lines.append(f"{prefix}: {item.get('message', '')}" if prefix else str(item.get("message", "")))
        hidden = len(self.errors) - len(lines)
        total = self.extra.get("total_problems")
        if isinstance(total, int) and total > len(self.errors):
            hidden = total - len(lines)
        if hidden > 0:
            lines.append(f"… and {hidden} more")
        return lines


class NetworkError(CliError):
    """The platform could not be reached (DNS, refused, TLS, timeout)."""

    exit_code = SERVER
