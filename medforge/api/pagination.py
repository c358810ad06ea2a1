"""Cursor pagination: `limit` 1..500 and an opaque, signed cursor.

Two flavours share one cursor format: keyset pagination over a queryset ordered by unique-ending
fields (stable while rows are inserted), and offset pagination for computed lists such as
leaderboards. The cursor is signed, so a tampered or truncated cursor is `invalid_cursor`,
never a 500.
"""
from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from django.core import signing
from django.db.models import Q, QuerySet
from rest_framework.response import Response

from .problems import Problem
from .renderers import make_meta

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
_SALT = "medforge.cursor.v1"


def parse_limit(request, default: int = DEFAULT_LIMIT) -> int:
    raw = request.query_params.get("limit")
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Problem("invalid_limit", f"limit must be an integer between 1 and {MAX_LIMIT}.") from None
    if not 1 <= value <= MAX_LIMIT:
        raise Problem("invalid_limit", f"limit must be between 1 and {MAX_LIMIT}, got {value}.")
    return value


def encode_cursor(payload: Any) -> str:
    return signing.dumps(payload, salt=_SALT, compress=True)


def decode_cursor(raw: str | None) -> Any:
    if not raw:
        return None
    try:
        return signing.loads(raw, salt=_SALT)
    except (signing.BadSignature, ValueError, TypeError):
        raise Problem("invalid_cursor", "The cursor is malformed or was not issued by this API.") from None


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"dt": value.isoformat()}
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Decimal):
        return str(value)
    return value


def _restore(value: Any) -> Any:
    if isinstance(value, dict) and "dt" in value:
        return dt.datetime.fromisoformat(value["dt"])
    return value


def paginated_response(request, items: list, *, limit: int, next_cursor: str | None) -> Response:
    resp = Response(
        {"data": items, "meta": make_meta(request, limit=limit, next_cursor=next_cursor,
                                          has_more=next_cursor is not None)}
    )
    resp.enveloped = True
    return resp


def keyset_page(
    request, queryset: QuerySet, *, ordering: Sequence[str], default_limit: int = DEFAULT_LIMIT
) -> tuple[list, int, str | None]:
    """One page of `queryset` ordered by `ordering` (the last field must be unique, e.g. pk).

    Returns (rows, limit, next_cursor).
    """
    limit = parse_limit(request, default_limit)
    cursor = decode_cursor(request.query_params.get("cursor"))
    qs = queryset.order_by(*ordering)
    fields = [f.lstrip("-") for f in ordering]
    if cursor is not None:
        if not isinstance(cursor, dict) or cursor.get("k") != "keyset" or not isinstance(
            cursor.get("v"), list
        ) or len(cursor["v"]) != len(fields):
            raise Problem("invalid_cursor", "The cursor does not belong to this list.")
        values = [_restore(v) for v in cursor["v"]]
        # (a, b, c) after (va, vb, vc) in the given directions, as a disjunction of prefixes.
        condition = Q()
        for i, name in enumerate(ordering):
            field = fields[i]
            op = "lt" if name.startswith("-") else "gt"
            term = Q(**{f"{field}__{op}": values[i]})
            for j in range(i):
                term &= Q(**{fields[j]: values[j]})
            condition |= term
        qs = qs.filter(condition)
    rows = list(qs[: limit + 1])
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor(
            {"k": "keyset", "v": [_jsonable(_attr(last, f)) for f in fields]}
        )
    return rows, limit, next_cursor


def _attr(obj: Any, dotted: str) -> Any:
    for part in dotted.split("__"):
        obj = getattr(obj, part)
        if hasattr(obj, "pk") and not isinstance(obj, (str, int)):
            obj = obj.pk
    return obj


def offset_page(
    request, total_or_slicer, *, default_limit: int = DEFAULT_LIMIT, scope: str = "list"
) -> tuple[Iterable, int, int, str | None]:
    """Offset pagination behind an opaque cursor, for computed orderings.

    `total_or_slicer(offset, count)` returns up to `count` rows from `offset`.
    Returns (rows, limit, offset, next_cursor).
    """
    limit = parse_limit(request, default_limit)
    cursor = decode_cursor(request.query_params.get("cursor"))
    offset = 0
    if cursor is not None:
        if not isinstance(cursor, dict) or cursor.get("k") != "offset" or cursor.get(
            "s"
        ) != scope or not isinstance(cursor.get("o"), int) or cursor["o"] < 0:
            raise Problem("invalid_cursor", "The cursor does not belong to this list.")
        offset = cursor["o"]
    rows = list(total_or_slicer(offset, limit + 1))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor({"k": "offset", "s": scope, "o": offset + limit})
    return rows, limit, offset, next_cursor
